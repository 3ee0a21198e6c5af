import type { Cpu } from './cpu.js';
import { effectKindNames } from './effects.js';
import type { EventRecord } from './failure.js';
import { TraceRecorder } from './trace.js';

/**
 * What a run remembers of its steps: the trace hash (FNV-1a over every recorded step's CPU, effect kind,
 * line id and end clock), the last `length` events for failure reports, the number of effects, and, when
 * tracing is on, the full trace.
 */
export class History {
  private hash = 0x811c9dc5;
  /** Effects recorded so far (memory accesses, spins, delays, task starts, ...). */
  effects = 0;
  private readonly step: Float64Array;
  private readonly cpu: Int32Array;
  private readonly time: Float64Array;
  private readonly kind: Uint8Array;
  private readonly label: string[];
  private count = 0;
  readonly recorder: TraceRecorder | null;

  constructor(
    /** How many of the last events a failure report shows. */
    readonly length: number,
    trace: boolean | { readonly limit: number } | undefined,
  ) {
    this.step = new Float64Array(length);
    this.cpu = new Int32Array(length);
    this.time = new Float64Array(length);
    this.kind = new Uint8Array(length);
    this.label = new Array<string>(length).fill('');
    this.recorder = trace ? new TraceRecorder(typeof trace === 'object' ? trace.limit : 5_000_000) : null;
  }

  /**
   * Records one performed effect: CPU `c` performed an effect of `kind` on line `lineId` (-1 for none) from
   * `start` to its clock now, at machine step `step`.
   */
  record(c: Cpu, kind: number, lineId: number, label: string, start: number, step: number): void {
    this.effects++;
    const cpu = c.id;
    const end = c.clock;
    let h = this.hash;
    h = Math.imul(h ^ cpu, 0x01000193);
    h = Math.imul(h ^ kind, 0x01000193);
    h = Math.imul(h ^ lineId, 0x01000193);
    h = Math.imul(h ^ (end | 0), 0x01000193);
    this.hash = h;
    if (this.length > 0) {
      const i = this.count++ % this.length;
      this.step[i] = step;
      this.cpu[i] = cpu;
      this.time[i] = start;
      this.kind[i] = kind;
      this.label[i] = label;
    }
    if (this.recorder !== null) {
      this.recorder.add({
        cpu,
        time: start,
        dur: end - start,
        kind: effectKindNames[kind],
        label,
        task: c.irq !== null ? 'irq' : (c.current?.name ?? 'idle'),
        step,
      });
    }
  }

  /** The trace hash as 8 hex digits. */
  get traceHash(): string {
    return (this.hash >>> 0).toString(16).padStart(8, '0');
  }

  /** The last events, oldest first, for a failure report. */
  lastEvents(): EventRecord[] {
    const out: EventRecord[] = [];
    const h = this.length;
    for (let k = Math.max(0, this.count - h); k < this.count; k++) {
      const i = k % h;
      out.push({
        step: this.step[i],
        cpu: this.cpu[i],
        time: this.time[i],
        what: `${effectKindNames[this.kind[i]]} ${this.label[i]}`.trim(),
      });
    }
    return out;
  }
}
