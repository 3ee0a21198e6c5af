import type { Machine, Policy, SchedulerView, TraceEvent } from '@spf/machine';

/**
 * The schedule debugger's data: one entry per machine step of a failing schedule's replay (the last
 * {@link DEBUG_STEPS} of them), saying which CPU ran, what it did, and afterwards where every CPU stands in
 * the student's code and in the kernel code, the values of the shared cells and who holds each lock. It is
 * plain JSON (the page steps through it forward and back; the CLI prints it as text).
 *
 * It is recorded only when a concurrency test fails, by replaying the failing schedule once more under a
 * {@link DebugRecorder}, which wraps the replay policy and adds no effect: the replay takes exactly the
 * steps of the failing run. Where a CPU stands in the student's code comes from probes that only look at
 * the JavaScript stack (see debug-probe.ts); when no recorder is active the probes cost one null check.
 */
export type ScheduleDebug = {
  readonly version: 1;
  readonly cpus: number;
  /** The failing schedule (replayable with `spf-grade --schedule`, or the page's link). */
  readonly schedule: string;
  /** Total steps of the replay; `steps` holds the last ones. */
  readonly totalSteps: number;
  /** Names of the watched cells, in the order of each step's `cells`. */
  readonly cellNames: readonly string[];
  /** Where a CPU stands, interned: each step's `cpus` holds indices into this table. */
  readonly places: readonly DebugPlace[];
  /** Lock states, interned: each step's `locks` holds indices into this table. */
  readonly lockStates: readonly DebugLock[];
  readonly steps: readonly DebugStep[];
};

/** One machine step and the state after it. */
export type DebugStep = {
  /** The machine step (0-based; the schedule's step number is this + 1). */
  readonly step: number;
  /** The CPU that took it. */
  readonly cpu: number;
  /** What it did, e.g. `writer0: rmw sem.count`. */
  readonly did: string;
  /** Simulated time at which it began, in ns. */
  readonly time: number;
  /** For each CPU, an index into {@link ScheduleDebug.places}. */
  readonly cpus: readonly number[];
  /** The watched cells' values, as text, in the order of {@link ScheduleDebug.cellNames}. */
  readonly cells: readonly string[];
  /** For each watched lock, an index into {@link ScheduleDebug.lockStates}. */
  readonly locks: readonly number[];
};

/** Where one CPU stands after a step. */
export type DebugPlace = {
  /** The task on the CPU, or null when none is left. */
  readonly task: string | null;
  readonly state: 'runnable' | 'blocked' | 'done' | 'idle';
  /** The student's line the CPU is at (the innermost frame of the student's code), if it is inside it. */
  readonly code: { readonly file: string; readonly line: number; readonly fn: string } | null;
  /** The kernel function that line called and the CPU is in, e.g. `rmw(sem.count)`; null outside student code. */
  readonly call: string | null;
  /** The kernel code that called the student's function, e.g. `RwSemaphore.downWrite (@spf/locks)`. */
  readonly via: string | null;
  /** The CPU's last performed effect, e.g. `rmw sem.count` (what it did most recently). */
  readonly last: string;
};

/** One watched lock after a step. */
export type DebugLock = {
  readonly name: string;
  /** Tasks holding it, e.g. `writer0 (write)`, or a description when names are unknown. */
  readonly holders: readonly string[];
  /** Tasks queued for it, in order, e.g. `reader1 (read)`. */
  readonly waiters: readonly string[];
};

/** How many of the last steps a failing test keeps for the debugger. */
export const DEBUG_STEPS = 400;

/** A shared value the debugger shows. */
export type WatchedCell = { readonly value: unknown };

/** A watched lock: how to read its holders and waiters after each step. */
type WatchedLock = {
  readonly name: string;
  /** The cell that identifies it in the state views handed to student code (its count or sequence). */
  readonly key: object;
  readonly describe: (holders: ReadonlyMap<string, string[]>) => DebugLock;
};

const CALLERS: Readonly<Record<string, string>> = {
  readBegin: 'SeqCount.readBegin (@spf/locks)',
  readRetry: 'SeqCount.readRetry (@spf/locks)',
  downRead: 'RwSemaphore.downRead (@spf/locks)',
  upRead: 'RwSemaphore.upRead (@spf/locks)',
  downWrite: 'RwSemaphore.downWrite (@spf/locks)',
  upWrite: 'RwSemaphore.upWrite (@spf/locks)',
};

type CpuNow = {
  code: DebugPlace['code'];
  call: string | null;
  /** The student's functions the CPU is inside, outermost first. */
  fns: string[];
};

let active: DebugRecorder | null = null;

/** The recorder of the debug replay in progress, or null (always null outside a debug replay). */
export function activeRecorder(): DebugRecorder | null {
  return active;
}

/**
 * Wraps the replay policy of a failing schedule and records, before every step, the state the previous
 * step left (see {@link ScheduleDebug}). It never changes a choice. Use {@link recordDebugReplay}.
 */
export class DebugRecorder implements Policy {
  readonly name: string;
  private machine: Machine | null = null;
  /** The CPU whose code is running now (the last one chosen). */
  running = -1;
  private readonly now: CpuNow[];
  private readonly cells: Array<{ name: string; cell: WatchedCell }> = [];
  private readonly locks: WatchedLock[] = [];
  /** Per lock key: task name -> the modes it holds. */
  private readonly holders = new Map<object, Map<string, string[]>>();
  private readonly snapshots: Array<Omit<DebugStep, 'did' | 'time'>> = [];
  private readonly places: DebugPlace[] = [];
  private readonly placeIds = new Map<string, number>();
  private readonly lockStates: DebugLock[] = [];
  private readonly lockIds = new Map<string, number>();
  private lastStep = -1;
  /** The step the last choice was made for (the run may have ended inside it). */
  lastChosen = -1;

  constructor(
    private readonly inner: Policy,
    readonly cpuCount: number,
  ) {
    this.name = inner.name;
    this.now = Array.from({ length: cpuCount }, () => ({ code: null, call: null, fns: [] }));
  }

  /** The machine of the replay (set by the scenario wrapper before any step). */
  attach(m: Machine): void {
    this.machine = m;
  }

  /** Registers cells whose values the debugger shows. */
  watchCells(cells: Readonly<Record<string, WatchedCell>>): void {
    for (const [name, cell] of Object.entries(cells)) this.cells.push({ name, cell });
  }

  /**
   * Registers a lock. `key` is the cell its state views carry (so the probes can tell which lock a
   * student function got); `describe` reads its holders and waiters.
   */
  watchLock(
    name: string,
    key: object,
    describe: (holders: readonly string[]) => Omit<DebugLock, 'name'>,
  ): void {
    this.holders.set(key, new Map());
    this.locks.push({
      name,
      key,
      describe: (h) => {
        const named: string[] = [];
        for (const [task, modes] of h) for (const mode of modes) named.push(`${task} (${mode})`);
        return { name, ...describe(named) };
      },
    });
  }

  /** The running task's name on the running CPU. */
  private taskName(cpu: number): string {
    const t = this.machine?.allTasks().find((x) => x.cpu === cpu && x.state !== 'done');
    return t?.name ?? `cpu${cpu}`;
  }

  /** A student function was called on the running CPU; returns its generator, tracked. */
  enter<T>(
    fn: string,
    lockKey: object | undefined,
    gen: Generator<unknown, T, unknown>,
  ): Generator<unknown, T, unknown> {
    const cpu = this.running;
    if (cpu < 0) return gen;
    const rec = this;
    const state = this.now[cpu];
    return (function* tracked() {
      state.fns.push(fn);
      if (fn.startsWith('up') && lockKey) rec.release(lockKey, cpu, fn === 'upRead' ? 'read' : 'write');
      try {
        const r = yield* gen;
        if (fn.startsWith('down') && lockKey) rec.acquire(lockKey, cpu, fn === 'downRead' ? 'read' : 'write');
        return r;
      } finally {
        state.fns.pop();
        if (state.fns.length === 0) {
          state.code = null;
          state.call = null;
        }
      }
    })();
  }

  private acquire(key: object, cpu: number, mode: string): void {
    const h = this.holders.get(key);
    if (!h) return;
    const name = this.taskName(cpu);
    h.set(name, [...(h.get(name) ?? []), mode]);
  }

  private release(key: object, cpu: number, mode: string): void {
    const h = this.holders.get(key);
    if (!h) return;
    const name = this.taskName(cpu);
    const modes = h.get(name);
    if (!modes) return;
    const i = modes.indexOf(mode);
    if (i >= 0) modes.splice(i, 1);
    if (modes.length === 0) h.delete(name);
  }

  /** Student code on the running CPU is calling kernel function `call`; `where` is its line, if known. */
  probe(call: string, where: { file: string; line: number } | undefined): void {
    const cpu = this.running;
    if (cpu < 0 || !where) return;
    const state = this.now[cpu];
    state.code = { file: where.file, line: where.line, fn: state.fns[state.fns.length - 1] ?? '(your code)' };
    state.call = call;
  }

  start(view: SchedulerView): void {
    this.inner.start(view);
  }

  choose(enabled: Int32Array, count: number, view: SchedulerView): number {
    if (view.step > 0) this.snapshot(view.step - 1, view.lastCpu);
    const c = this.inner.choose(enabled, count, view);
    this.running = c;
    this.lastChosen = view.step;
    return c;
  }

  finish(steps: number): void {
    this.inner.finish?.(steps);
  }

  private intern<T>(table: T[], ids: Map<string, number>, v: T): number {
    const key = JSON.stringify(v);
    let id = ids.get(key);
    if (id === undefined) {
      id = table.length;
      table.push(v);
      ids.set(key, id);
    }
    return id;
  }

  /** Records the state after machine step `step`, taken by `cpu`. */
  private snapshot(step: number, cpu: number): void {
    if (step <= this.lastStep) return;
    this.lastStep = step;
    const tasks = this.machine?.allTasks() ?? [];
    const cpus = this.now.map((s, c) => {
      const onCpu = tasks.filter((t) => t.cpu === c);
      const t = onCpu.find((x) => x.state !== 'done') ?? onCpu[onCpu.length - 1];
      const place: DebugPlace = {
        task: t?.name ?? null,
        state: t ? t.state : 'idle',
        code: s.code,
        call: s.code ? s.call : null,
        via: s.fns.length > 0 ? (CALLERS[s.fns[0]] ?? null) : null,
        last: '',
      };
      return this.intern(this.places, this.placeIds, place);
    });
    const cells = this.cells.map(({ cell }) => showValue(cell.value));
    const locks = this.locks.map((l) =>
      this.intern(this.lockStates, this.lockIds, l.describe(this.holders.get(l.key) ?? new Map())),
    );
    this.snapshots.push({ step, cpu, cpus, cells, locks });
    if (this.snapshots.length > DEBUG_STEPS * 2) this.snapshots.splice(0, DEBUG_STEPS);
  }

  /** Notes what a CPU performed (from the trace), so each place says what the CPU did last. */
  private noteEvents(events: readonly TraceEvent[]): Map<number, TraceEvent[]> {
    const byStep = new Map<number, TraceEvent[]>();
    for (const e of events) {
      const list = byStep.get(e.step);
      if (list) list.push(e);
      else byStep.set(e.step, [e]);
    }
    return byStep;
  }

  /**
   * The debugger's data, after the replay ran: the last steps with what each did (from the replay's
   * trace) and the state after it, up to the step the run ended in (it may have stopped inside it, so
   * no later choice recorded it).
   */
  result(schedule: string, trace: readonly TraceEvent[]): ScheduleDebug {
    const lastStep = this.lastChosen;
    if (lastStep >= 0) this.snapshot(lastStep, this.running);
    const byStep = this.noteEvents(trace);
    const kept = this.snapshots.slice(-DEBUG_STEPS);
    const steps: DebugStep[] = kept.map((s) => {
      const evs = byStep.get(s.step) ?? [];
      const did = evs.length
        ? `${evs[0].task}: ${evs.map((e) => `${e.kind}${e.label ? ` ${e.label}` : ''}`).join(', ')}`
        : `${this.places[s.cpus[s.cpu]]?.task ?? `CPU ${s.cpu}`}: a step with no memory access`;
      return { ...s, did, time: evs[0]?.time ?? 0 };
    });
    // Each place's `last` is the CPU's latest effect up to that step: fill it in from the trace.
    const lastOf: string[] = new Array<string>(this.cpuCount).fill('');
    const places = [...this.places];
    const ids = new Map<string, number>(this.placeIds);
    const filled = steps.map((s) => {
      const e = byStep.get(s.step)?.at(-1);
      if (e) lastOf[s.cpu] = `${e.kind}${e.label ? ` ${e.label}` : ''}`;
      const cpus = s.cpus.map((id, c) => this.intern(places, ids, { ...places[id], last: lastOf[c] }));
      return { ...s, cpus };
    });
    const used = new Map<number, number>();
    const outPlaces: DebugPlace[] = [];
    const remap = (id: number) => {
      let n = used.get(id);
      if (n === undefined) {
        n = outPlaces.length;
        outPlaces.push(places[id]);
        used.set(id, n);
      }
      return n;
    };
    return {
      version: 1,
      cpus: this.cpuCount,
      schedule,
      totalSteps: lastStep + 1,
      cellNames: this.cells.map((c) => c.name),
      places: outPlaces,
      lockStates: this.lockStates,
      steps: filled.map((s) => ({ ...s, cpus: s.cpus.map(remap) })),
    };
  }

  /** Makes this the active recorder while `f` runs (the probes report to it). */
  during<T>(f: () => T): T {
    const saved = active;
    active = this;
    try {
      return f();
    } finally {
      active = saved;
    }
  }
}

/** A value as the debugger prints it. */
export function showValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object' && 'name' in v && typeof (v as { name: unknown }).name === 'string')
    return (v as { name: string }).name;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Registers cells with the active debug replay (does nothing otherwise). Call it from a scenario's setup. */
export function watchCells(cells: Readonly<Record<string, WatchedCell>>): void {
  active?.watchCells(cells);
}
