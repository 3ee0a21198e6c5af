import { effectKindNames } from './effects.js';

/** One recorded event: a CPU performed an effect from `time` for `dur` nanoseconds. */
export type TraceEvent = {
  readonly cpu: number;
  readonly time: number;
  readonly dur: number;
  readonly kind: string;
  /** The memory line or effect label, if any. */
  readonly label: string;
  /** Task (or `irq`) that performed it. */
  readonly task: string;
  readonly step: number;
};

/** Records events of a run when tracing is on, up to a limit. */
export class TraceRecorder {
  readonly events: TraceEvent[] = [];
  dropped = 0;
  constructor(readonly limit: number) {}
  add(e: TraceEvent): void {
    if (this.events.length < this.limit) this.events.push(e);
    else this.dropped++;
  }
}

/** Chrome Trace Event format (opens in Perfetto and chrome://tracing); times in microseconds. */
export type ChromeTrace = {
  readonly traceEvents: ReadonlyArray<Record<string, string | number | Record<string, string | number>>>;
  readonly displayTimeUnit: 'ns';
};

/** Converts recorded events to Chrome Trace Event JSON: one thread per CPU, complete (`X`) events. */
export function toChromeTrace(events: readonly TraceEvent[], cpuCount: number): ChromeTrace {
  const out: Array<Record<string, string | number | Record<string, string | number>>> = [];
  out.push({ name: 'process_name', ph: 'M', pid: 0, tid: 0, args: { name: 'spf machine' } });
  for (let c = 0; c < cpuCount; c++) {
    out.push({ name: 'thread_name', ph: 'M', pid: 0, tid: c, args: { name: `CPU ${c}` } });
  }
  for (const e of events) {
    out.push({
      name: e.label ? `${e.kind} ${e.label}` : e.kind,
      cat: e.kind,
      ph: 'X',
      pid: 0,
      tid: e.cpu,
      ts: e.time / 1000,
      dur: Math.max(e.dur, 0.5) / 1000,
      args: { task: e.task, step: e.step },
    });
  }
  return { traceEvents: out, displayTimeUnit: 'ns' };
}

/**
 * A compact trace for drawing per-CPU timelines (the course site): strings are interned once, each event
 * is `[cpu, time, dur, kind, label, task, step]` with indices into `strings`.
 */
export type CompactTrace = {
  readonly version: 1;
  readonly cpus: number;
  readonly strings: readonly string[];
  readonly events: ReadonlyArray<readonly [number, number, number, number, number, number, number]>;
};

export function toCompactTrace(events: readonly TraceEvent[], cpuCount: number): CompactTrace {
  const strings: string[] = [...effectKindNames];
  const index = new Map<string, number>(strings.map((s, i) => [s, i]));
  const intern = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.length;
      strings.push(s);
      index.set(s, i);
    }
    return i;
  };
  return {
    version: 1,
    cpus: cpuCount,
    strings,
    events: events.map(
      (e) => [e.cpu, e.time, e.dur, intern(e.kind), intern(e.label), intern(e.task), e.step] as const,
    ),
  };
}
