import { Coherence } from './coherence.js';
import { type CostModel, makeCostModel } from './cost-model.js';
import { Cpu, type IpiRequest, type IrqFrame } from './cpu.js';
import {
  type BlockEffect,
  type Effect,
  EffectKind,
  type IpiEffect,
  type Kernel,
  type MemoryEffect,
  type RmwLoopEffect,
  type SpinWaitEffect,
} from './effects.js';
import { KernelFault, MachineConfigError, ScheduleDivergenceError } from './errors.js';
import type { FailureReport } from './failure.js';
import { cpuReport, describeDeadlock, describeSpinners } from './failure-report.js';
import { History } from './history.js';
import { resumeCalls } from './trampoline.js';
import { MemoryLine } from './memory-line.js';
import type { Policy, SchedulerView } from './policy/policy.js';
import { checkSeed } from './policy/random.js';
import { mixSeed, Prng } from './prng.js';
import { timed } from './policy/timed.js';
import { advanceSpin, checkResumed, describeStuckSpinner, enterYielded } from './pure-spin.js';
import { ReadyHeap } from './ready-heap.js';
import { SpinRing } from './spin-ring.js';
import { encodeSchedule } from './schedule.js';
import { Task } from './task.js';
import type { TraceEvent } from './trace.js';
import type { WaitQueue } from './wait-queue.js';

/** Most CPUs a machine may have. */
export const MAX_CPUS = 1024;

/** How a machine is built. */
export type MachineConfig = {
  /** Number of CPUs, 1 to 1024. */
  readonly cpus: number;
  /**
   * Integer seed in [0, 2^32); default 0. A seed other than 0 varies the run (see {@link timed}): a small
   * latency jitter on memory accesses that miss the L1, and under timed a seeded tie-break between CPUs ready
   * at the same time. Seed 0 is the unvaried run. random, pct and dfs choose CPUs from their own seeds.
   * Kernel code can read it through {@link Machine.seed}.
   */
  readonly seed?: number;
  /** Scheduling policy; default {@link timed}. */
  readonly policy?: Policy;
  /** Overrides of the default latencies. */
  readonly cost?: Partial<CostModel>;
  /** 1 (default) or 2 sockets. */
  readonly sockets?: 1 | 2;
  /** Steps after which the run stops with a `step-limit` failure (a livelock guard). Default 50 million. */
  readonly maxSteps?: number;
  /** Record a trace of every performed effect (default off), optionally with a cap on the number of events. */
  readonly trace?: boolean | { readonly limit: number };
  /** How many of the last events a failure report shows (default 24). */
  readonly historyLength?: number;
};

/** The outcome of {@link Machine.run}. */
export type RunResult = {
  readonly ok: boolean;
  readonly failure: FailureReport | null;
  readonly steps: number;
  /** Latest CPU clock when the run ended: the simulated duration in nanoseconds. */
  readonly time: number;
  /** Per-CPU clocks at the end. */
  readonly clocks: readonly number[];
  readonly schedule: string;
  /** Hash of every step's (CPU, effect, line, clock): equal runs give equal hashes. */
  readonly traceHash: string;
  readonly trace: readonly TraceEvent[] | null;
  /** Effects performed (memory accesses, spins, delays, ...), for throughput figures. */
  readonly effects: number;
  /**
   * Iterations of pure spin-wait loops ({@link spinWaitEffect}) whose code the machine did not run because
   * the line was unchanged: host work saved, nothing simulated changes.
   */
  readonly spinsSkipped: number;
};

let machineEpoch = 0;

/** Internal signal that the run must stop (a failure was recorded). */
class StopRun extends Error {}

/** Frames {@link Machine.physLine} keeps in its table by frame number (16 GiB); lines above go to a map. */
const PHYS_TABLE_FRAMES = 1 << 22;

/**
 * When the next step of task `t`, current on CPU `c` and running no interrupt, can begin: not before its wake-up.
 * A delay's effect (the code after it) happens when the delay ends, so the CPU is ordered by that time: code
 * after `delay(5000)` must see what other CPUs did during those 5 us.
 */
function taskReadyAt(c: Cpu, t: Task): number {
  const base = t.wokenAt > c.clock ? t.wokenAt : c.clock;
  const e = t.pending;
  return e !== undefined && e.kind === EffectKind.Delay && e.ns > 0 ? base + e.ns : base;
}

/**
 * A simulated x86-64 SMP machine. Build one, {@link Machine.spawn} tasks onto its CPUs, then
 * {@link Machine.run} it under a policy. Every run is reproducible from its configuration, seed and
 * policy; a failing run reports a schedule string that {@link replay} turns back into the same run.
 *
 * Kernel code is a generator yielding {@link Effect}s. Between two yields it runs atomically; at each yield
 * the policy may let another CPU step. The machine charges each effect's latency to the CPU's clock from the
 * {@link CostModel}, tracking a MESI-like state per {@link MemoryLine}: a hit costs an L1 access, a line
 * modified by another CPU costs a transfer, a write or locked RMW invalidates every other copy, and
 * ownership transfers of one line are serialized, so contention emerges from the access pattern.
 */
export class Machine implements SchedulerView {
  readonly cpuCount: number;
  readonly seed: number;
  readonly cost: CostModel;
  readonly policy: Policy;
  readonly maxSteps: number;
  private readonly cpus: Cpu[];
  private readonly tasks: Task[] = [];
  private readonly coherence: Coherence;
  /**
   * The lines of physical memory made so far, by 4 KiB frame: the frame's one line while only one was used (a
   * fault's first store touches one line of a new page), then an array of its 64 lines. A plain array indexed
   * by frame number, so the lookup is two loads, where a map of every line would grow by one entry per page
   * touched and make each lookup of a new line a cache miss in a large hash table.
   */
  private readonly physFrames: Array<MemoryLine | Array<MemoryLine | undefined> | undefined> = [];
  /** Lines of frames at or above {@link PHYS_TABLE_FRAMES} (a wild pointer, or a very large memory). */
  private readonly physFar = new Map<number, MemoryLine>();
  private readonly checks: Array<() => void> = [];
  private readonly history: History;
  /** The CPU chosen at each step (one byte each on machines of up to 256 CPUs, else two). */
  private choices: Uint8Array | Uint16Array;
  private ran = false;
  private live = 0;
  private failure: FailureReport | null = null;
  /** Whether the step in progress was a pure spin-wait step that ran no kernel code. */
  private spinStep = false;
  /** Consecutive steps that ran no kernel code (pure spin-wait steps), to detect a spin nobody can end. */
  private spinStreak = 0;
  /** Pure spin-wait iterations whose code the machine did not need to run. */
  private spinsSkipped = 0;
  private readonly enabledBuf: Int32Array;
  /** Whether each CPU can take a step, kept current incrementally (only CPUs a step touched change). */
  private readonly en: Uint8Array;
  private readonly dirty: Int32Array;
  private readonly dirtyMark: Uint8Array;
  private dirtyCount = 0;
  /** Enabled CPUs by ready time, used by discrete-event policies. */
  private readonly heap: ReadyHeap;
  /** Quiet spinners, kept out of {@link heap} (discrete-event policies with integer pause and L1 costs). */
  private readonly ring: SpinRing | null;
  step = 0;
  lastCpu = -1;

  constructor(config: MachineConfig) {
    if (config === null || typeof config !== 'object')
      throw new MachineConfigError('a machine needs a configuration object');
    const { cpus } = config;
    if (typeof cpus !== 'number' || !Number.isInteger(cpus) || cpus < 1 || cpus > MAX_CPUS) {
      throw new MachineConfigError(`cpus must be an integer from 1 to ${MAX_CPUS}, got ${String(cpus)}`);
    }
    const seed = config.seed ?? 0;
    checkSeed(seed);
    const maxSteps = config.maxSteps ?? 50_000_000;
    if (!Number.isInteger(maxSteps) || maxSteps < 1) {
      throw new MachineConfigError(`maxSteps must be a positive integer, got ${String(maxSteps)}`);
    }
    const policy = config.policy ?? timed();
    if (!policy || typeof policy.choose !== 'function' || typeof policy.start !== 'function') {
      throw new MachineConfigError(
        `unknown policy ${JSON.stringify(policy)}; use timed(), random(seed), pct(seed, depth), replay(schedule) or an explorer`,
      );
    }
    this.cpuCount = cpus;
    this.seed = seed;
    this.maxSteps = maxSteps;
    this.policy = policy;
    this.cost = makeCostModel(cpus, config.cost, config.sockets ?? 1);
    this.cpus = Array.from({ length: cpus }, (_, i) => new Cpu(i, this.cost.tick));
    this.choices = cpus <= 256 ? new Uint8Array(1024) : new Uint16Array(1024);
    this.enabledBuf = new Int32Array(cpus);
    this.en = new Uint8Array(cpus);
    this.dirty = new Int32Array(cpus);
    this.dirtyMark = new Uint8Array(cpus);
    const tieRank = Int32Array.from({ length: cpus }, (_, i) => i);
    if (policy.discreteEvent === true && seed !== 0) {
      // A varied timed run: ties go by a seeded order of the CPUs instead of by id (see timed()).
      const order = new Prng(mixSeed(seed, 0x71e5));
      for (let i = cpus - 1; i > 0; i--) {
        const j = order.below(i + 1);
        const t = tieRank[i];
        tieRank[i] = tieRank[j];
        tieRank[j] = t;
      }
    }
    this.heap = new ReadyHeap(cpus, tieRank);
    const period = this.cost.pause + this.cost.l1Hit;
    this.ring =
      policy.discreteEvent === true &&
      this.cost.pause > 0 &&
      this.cost.l1Hit > 0 &&
      Number.isSafeInteger(this.cost.pause) &&
      Number.isSafeInteger(this.cost.l1Hit) &&
      period <= 4096
        ? new SpinRing(cpus, period)
        : null;
    // The jitter applies under every policy with a seed other than 0, so that a replayed schedule of a
    // varied run reproduces its timing (explorations run with machine seed 0 and see no jitter).
    const jitter = seed !== 0 ? new Prng(mixSeed(seed, 0x7177e2)) : null;
    this.coherence = new Coherence(this.cost, cpus, ++machineEpoch, jitter);
    this.history = new History(config.historyLength ?? 24, config.trace);
  }

  // ---- building -------------------------------------------------------------------------------------

  /** A new memory line for an object of simulated kernel memory. */
  line(label: string): MemoryLine {
    return new MemoryLine(label);
  }

  /** The memory line that holds physical address `addr` (64-byte granules). */
  physLine(addr: number): MemoryLine {
    const key = Math.floor(addr / 64);
    const pfn = Math.floor(key / 64);
    if (pfn >= PHYS_TABLE_FRAMES) return this.farPhysLine(key);
    const e = this.physFrames[pfn];
    if (e === undefined) {
      // Fill any gap below first, so the array stays a plain (non-dictionary) array.
      while (this.physFrames.length < pfn) this.physFrames.push(undefined);
      const l = MemoryLine.physical(key * 64);
      this.physFrames[pfn] = l;
      return l;
    }
    if (!Array.isArray(e)) {
      if (e.physicalAddress === key * 64) return e;
      // A second line of this frame: the frame gets an array of its lines.
      const lines = new Array<MemoryLine | undefined>(64).fill(undefined);
      lines[(e.physicalAddress / 64) % 64] = e;
      this.physFrames[pfn] = lines;
      return this.lineIn(lines, key);
    }
    return this.lineIn(e, key);
  }

  /** The line `key` (a line number) of a frame that has an array of lines. */
  private lineIn(lines: Array<MemoryLine | undefined>, key: number): MemoryLine {
    const i = key % 64;
    let l = lines[i];
    if (l === undefined) {
      l = MemoryLine.physical(key * 64);
      lines[i] = l;
    }
    return l;
  }

  /** {@link physLine} above the table (line number `key`). */
  private farPhysLine(key: number): MemoryLine {
    let l = this.physFar.get(key);
    if (l === undefined) {
      l = MemoryLine.physical(key * 64);
      this.physFar.set(key, l);
    }
    return l;
  }

  /**
   * Creates a task running `body` on `cpu`. Several tasks on one CPU share it: one runs until it sleeps,
   * yields or is preempted by the tick (every {@link CostModel.tick} ns of its clock). May also be called
   * from running kernel code (as `clone()` would).
   */
  spawn(cpu: number, name: string, body: Kernel<unknown> | (() => Kernel<unknown>)): Task {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpuCount) {
      throw new MachineConfigError(
        `cannot spawn '${name}' on CPU ${cpu}: the machine has CPUs 0 to ${this.cpuCount - 1}`,
      );
    }
    const gen = typeof body === 'function' ? body() : body;
    if (!gen || typeof (gen as Kernel<unknown>).next !== 'function') {
      throw new MachineConfigError(
        `task '${name}' must be a generator (function* ... ) yielding machine effects`,
      );
    }
    const task = new Task(this.tasks.length, name, cpu, gen);
    this.tasks.push(task);
    this.live++;
    const c = this.cpus[cpu];
    if (this.ran) this.markDirty(cpu);
    if (c.current === null) {
      c.current = task;
      if (this.ran) task.wokenAt = this.cpus[this.lastCpu >= 0 ? this.lastCpu : cpu].clock;
    } else c.runqueue.push(task);
    return task;
  }

  /** Registers a check that runs after every task has finished (for example an invariant checker). */
  atEnd(check: () => void): void {
    this.checks.push(check);
  }

  /** Every task spawned so far. */
  allTasks(): readonly Task[] {
    return this.tasks;
  }

  /**
   * Steps recorded so far in this run (effects plus each task's start: the figure `run()` reports as
   * `effects`), readable while the run is in progress: a task can take the difference around a piece of code to count what it costs.
   */
  get effectCount(): number {
    return this.history.effects;
  }

  // ---- scheduler view --------------------------------------------------------------------------------

  clock(cpu: number): number {
    return this.cpus[cpu].clock;
  }

  isSpinning(cpu: number): boolean {
    const e = this.cpus[cpu].pendingEffect;
    return e !== undefined && e.kind === EffectKind.Spin;
  }

  // ---- running ---------------------------------------------------------------------------------------

  /** Runs until every task has finished, or a failure stops the run. Can be called once per machine. */
  run(): RunResult {
    if (this.ran) throw new MachineConfigError('a machine runs once; build a new one for another run');
    this.ran = true;
    this.policy.start(this);
    const enabled = this.enabledBuf;
    const n = this.cpuCount;
    const heapMode = this.policy.discreteEvent === true;
    for (let i = 0; i < n; i++) this.markDirty(i);
    try {
      for (;;) {
        this.flushDirty(heapMode);
        let cpu: number;
        if (heapMode) {
          const ring = this.ring;
          const heap = this.heap;
          const r = ring !== null ? ring.peek() : -1;
          if (r >= 0) {
            // A quiet spinner steps next if its step starts before the heap's first (ties by rank).
            const t = ring!.nextTime();
            if (
              heap.size === 0 ||
              t < heap.keyAt(0) ||
              (t === heap.keyAt(0) && ring!.nextRank() < heap.rankAt(0))
            ) {
              cpu = r;
              if (this.step < this.maxSteps) {
                this.ringStep(this.cpus[cpu], t);
                continue;
              }
            } else cpu = heap.top();
          } else {
            if (heap.size === 0) {
              if (this.live > 0) this.fail('deadlock', describeDeadlock(this.tasks, this.cpus), -1, null);
              break;
            }
            cpu = heap.top();
          }
          // A pure spin-wait step that runs no kernel code, performed without the general step's checks.
          if (this.step < this.maxSteps && this.spinStepFast(this.cpus[cpu])) continue;
        } else {
          let count = 0;
          const en = this.en;
          for (let i = 0; i < n; i++) if (en[i] !== 0) enabled[count++] = i;
          if (count === 0) {
            if (this.live > 0) this.fail('deadlock', describeDeadlock(this.tasks, this.cpus), -1, null);
            break;
          }
          cpu = -1;
          if (this.step < this.maxSteps) cpu = this.policy.choose(enabled, count, this);
        }
        if (this.step >= this.maxSteps) {
          this.fail(
            'step-limit',
            `no end after ${this.maxSteps} steps (a livelock, or raise maxSteps): ${describeSpinners(this.cpus)}`,
            -1,
            null,
          );
        }
        this.recordChoice(cpu);
        this.markDirty(cpu);
        this.spinStep = false;
        this.stepCpu(this.cpus[cpu]);
        this.step++;
        this.lastCpu = cpu;
        if (this.spinStep) this.countSpinStep();
        else this.spinStreak = 0;
      }
      if (!this.failure) {
        for (const check of this.checks) {
          try {
            check();
          } catch (e) {
            this.failFromError(e, -1, null);
          }
        }
      }
      this.policy.finish?.(this.step);
    } catch (e) {
      if (e instanceof ScheduleDivergenceError) throw e;
      if (!(e instanceof StopRun)) throw e;
    }
    return this.result();
  }

  private result(): RunResult {
    let time = 0;
    for (const c of this.cpus) if (c.clock > time) time = c.clock;
    const choices = this.choices;
    const steps = this.step;
    let schedule: string | undefined;
    return {
      ok: this.failure === null,
      failure: this.failure,
      steps,
      time,
      clocks: this.cpus.map((c) => c.clock),
      // Encoded on first use: a long timed run has millions of steps and usually nobody asks.
      get schedule(): string {
        schedule ??= encodeSchedule(choices, steps);
        return schedule;
      },
      traceHash: this.history.traceHash,
      trace: this.history.recorder ? this.history.recorder.events : null,
      effects: this.history.effects,
      spinsSkipped: this.spinsSkipped,
    };
  }

  /** Records that `cpu` takes the step in progress (the schedule). */
  private recordChoice(cpu: number): void {
    if (this.step >= this.choices.length) {
      const grown =
        this.cpuCount <= 256
          ? new Uint8Array(this.choices.length * 2)
          : new Uint16Array(this.choices.length * 2);
      grown.set(this.choices);
      this.choices = grown;
    }
    this.choices[this.step] = cpu;
  }

  /** After a step that ran no kernel code: every so often, checks for spinners nobody can release. */
  private countSpinStep(): void {
    if (++this.spinStreak > 64 + 8 * this.cpuCount) {
      this.spinStreak = 0;
      this.checkSpinForever();
    }
  }

  /**
   * Under a discrete-event policy, performs CPU `c`'s step at once if it is a step of a pure spin-wait that
   * cannot resume the task's code: the PAUSE, or the re-read of a line unchanged since the code last ran
   * that hits in the CPU's cache. It is the same step `stepTask` would take (same clock, coherence state,
   * trace event, schedule entry and spin-step accounting), without the checks a general step needs: nothing
   * else can happen on the CPU (no interrupt or IPI, no other task to preempt to, no wake-up pending), so it
   * stays enabled and ready at its new clock. Returns false, having done nothing, for any other step.
   */
  private spinStepFast(c: Cpu): boolean {
    const t = c.current;
    if (t === null || c.irq !== null || c.inbox.length > 0 || c.waitingIpi !== null) return false;
    const w = t.spinWait;
    if (w === null || !t.started || c.runqueue.length > 0 || t.wokenAt > c.clock) return false;
    const e = t.pending;
    if (e === w.spin) this.quietStep(c, t, w);
    else if (e !== w.read) return false;
    else if (
      t.spinChecked &&
      w.line.version === t.spinVersion &&
      this.coherence.readHits(c.id, w.read.line)
    ) {
      this.quietStep(c, t, w);
    } else {
      // A re-read that may miss or see a new value, of a loop whose stated exit condition still fails (it
      // only reads values already on the line): the task's code would spin again, so the step resumes no
      // code.
      if (w.until === undefined || w.until()) return false;
      this.untilStep(c, t, w, e);
    }
    this.requeueSpinner(c);
    return true;
  }

  /**
   * Performs, as `stepTask` does, the re-read `e` of a pure spin-wait `w` whose stated exit condition still
   * fails (it may miss or see a new value, but the task's code would only spin again), and counts it.
   */
  private untilStep(c: Cpu, t: Task, w: SpinWaitEffect, e: Effect): void {
    this.recordChoice(c.id);
    t.resume = this.perform(c, t, e);
    if (advanceSpin(t, w, e) !== 'skipped') throw new Error('unreachable: the spin-wait must go on');
    this.spinsSkipped++;
    this.step++;
    this.lastCpu = c.id;
    this.countSpinStep();
  }

  /** After a spin step of CPU `c`: into the ring of quiet spinners if it spins quietly and may join, else the heap. */
  private requeueSpinner(c: Cpu): void {
    if (this.ring !== null && this.spinsQuietly(c) && this.joinRing(c)) this.heap.remove(c.id);
    else this.heap.set(c.id, c.clock);
  }

  /**
   * Performs CPU `c`'s next pure spin-wait step that resumes no code (its task `t` spins in `w`, and the
   * step is the PAUSE or a re-read hit of an unchanged line), exactly as `stepTask` would, and counts it.
   */
  private quietStep(c: Cpu, t: Task, w: SpinWaitEffect): void {
    this.recordChoice(c.id);
    const start = c.clock;
    if (t.pending === w.spin) {
      const e = w.spin;
      c.clock = start + this.cost.pause;
      this.history.record(c, e.kind, -1, e.label ?? '', start, this.step);
      t.pending = w.read;
    } else {
      const e = w.read;
      c.clock = start + this.cost.l1Hit;
      this.history.record(c, e.kind, e.line.id, e.label ?? e.line.label, start, this.step);
      t.pending = w.spin;
      this.spinsSkipped++;
    }
    t.resume = undefined;
    this.step++;
    this.lastCpu = c.id;
    this.countSpinStep();
  }

  /** Puts quiet spinner `c` in the ring of quiet spinners if its next step is not behind the ring's walk. */
  private joinRing(c: Cpu): boolean {
    const t = c.current!;
    const next = c.clock + (t.pending === t.spinWait!.spin ? this.cost.pause : this.cost.l1Hit);
    return this.ring!.join(c.id, this.heap.rankOf(c.id), c.clock, next);
  }

  /**
   * The ring's next entry (CPU `c`, starting at `time`) is the next step. A PAUSE is performed as it is; a
   * re-read of an unchanged line hits; a re-read of a line written since, by a loop whose stated exit
   * condition still fails, is performed as `stepTask` performs it (it may miss), after which the CPU joins
   * the ring again at its new clock, or goes back to the heap. Anything else (the loop's code must run) takes
   * the CPU out of the ring and back to the heap without stepping. Whatever else could end the quiet spin
   * (an IPI, a wake-up, a task to switch to) marks the CPU dirty, which has already taken it out of the ring.
   */
  private ringStep(c: Cpu, time: number): void {
    const ring = this.ring!;
    const t = c.current!;
    const w = t.spinWait!;
    const e = t.pending;
    if (c.clock === time && (e === w.spin || w.line.version === t.spinVersion)) {
      ring.fired();
      this.quietStep(c, t, w);
      return;
    }
    ring.leave(c.id);
    if (c.clock !== time || e !== w.read || w.until === undefined || w.until()) {
      this.markDirty(c.id);
      return;
    }
    this.untilStep(c, t, w, e);
    this.requeueSpinner(c); // not in the heap: removing it there is a no-op
  }

  /**
   * Whether CPU `c`'s next steps, until another CPU writes the line it spins on, are those of a pure spin-wait
   * that resumes no code: PAUSE, then a re-read that hits in its cache, again and again, with nothing else
   * that could happen on the CPU (see {@link spinStepFast}).
   */
  private spinsQuietly(c: Cpu): boolean {
    const t = c.current;
    if (t === null || c.irq !== null || c.inbox.length > 0 || c.waitingIpi !== null) return false;
    const w = t.spinWait;
    if (w === null || !t.started || c.runqueue.length > 0 || t.wokenAt > c.clock || !t.spinChecked)
      return false;
    return (
      (t.pending === w.spin || t.pending === w.read) &&
      w.line.version === t.spinVersion &&
      this.coherence.readHits(c.id, w.read.line) &&
      Number.isSafeInteger(c.clock)
    );
  }

  private markDirty(cpu: number): void {
    if (this.dirtyMark[cpu] === 0) {
      this.dirtyMark[cpu] = 1;
      this.dirty[this.dirtyCount++] = cpu;
    }
  }

  /** Recomputes whether the CPUs touched by the last step can run, and (timed policy) their heap keys. */
  private flushDirty(heapMode: boolean): void {
    if (heapMode && this.dirtyCount === 1) {
      // The common case of a timed run: the last step touched only its own CPU, which runs a task that is
      // not in a spin-wait and has no interrupt to take. Such a CPU is enabled, spins in no ring, and goes to
      // the heap at the task's ready time: the general loop below would decide the same, through more calls.
      const id = this.dirty[0];
      const c = this.cpus[id];
      const t = c.current;
      if (
        t !== null &&
        t.spinWait === null &&
        c.irq === null &&
        c.inbox.length === 0 &&
        c.waitingIpi === null
      ) {
        this.dirtyMark[id] = 0;
        this.dirtyCount = 0;
        if (this.ring !== null) this.ring.leave(id);
        this.en[id] = 1;
        this.heap.set(id, taskReadyAt(c, t));
        return;
      }
    }
    for (let k = 0; k < this.dirtyCount; k++) {
      const id = this.dirty[k];
      this.dirtyMark[id] = 0;
      const c = this.cpus[id];
      const ring = this.ring;
      if (ring !== null) ring.leave(id);
      const on = this.isEnabled(c);
      this.en[id] = on ? 1 : 0;
      if (heapMode) {
        if (!on) this.heap.remove(id);
        else if (ring !== null && this.spinsQuietly(c) && this.joinRing(c)) this.heap.remove(id);
        else this.heap.set(id, this.readyAt(id));
      }
    }
    this.dirtyCount = 0;
  }

  /** Simulated time at which the CPU's next step can begin (the key of the timed policy). */
  readyAt(cpu: number): number {
    const c = this.cpus[cpu];
    if (this.ipiDeliverable(c)) {
      // Delivery waits for the IPI to arrive (it is only deliverable early when the CPU is otherwise idle).
      const a = c.inbox[0].arrival;
      return a > c.clock ? a : c.clock;
    }
    if (c.irq !== null) return c.clock;
    if (c.waitingIpi !== null) {
      const ack = c.waitingIpi.ackTime + this.cost.lineTransfer;
      return ack > c.clock ? ack : c.clock;
    }
    const t = c.current;
    return t === null ? c.clock : taskReadyAt(c, t);
  }

  /**
   * Whether the CPU's next step delivers a pending IPI: interrupts are on, no handler is running, and the
   * oldest IPI has arrived or the CPU has nothing else to do.
   */
  private ipiDeliverable(c: Cpu): boolean {
    return (
      c.inbox.length > 0 &&
      c.irqEnabled &&
      c.irq === null &&
      (c.inbox[0].arrival <= c.clock || !this.taskCanStep(c))
    );
  }

  private isEnabled(c: Cpu): boolean {
    return this.ipiDeliverable(c) || c.irq !== null || this.taskCanStep(c);
  }

  private taskCanStep(c: Cpu): boolean {
    const t = c.current;
    if (t === null) return false;
    if (c.waitingIpi !== null) return c.waitingIpi.remaining === 0;
    return true;
  }

  private stepCpu(c: Cpu): void {
    if (this.ipiDeliverable(c)) {
      this.deliverIpi(c);
      return;
    }
    if (c.irq !== null) {
      this.stepIrq(c);
      return;
    }
    this.stepTask(c, c.current!);
  }

  private deliverIpi(c: Cpu): void {
    const msg = c.inbox.shift()!;
    if (msg.arrival > c.clock) c.clock = msg.arrival;
    const start = c.clock;
    c.clock += this.cost.exceptionEntryExit;
    this.record(c, EffectKind.Ipi, null, `irq: ${msg.req.label} from CPU ${msg.from}`, start);
    const frame: IrqFrame = {
      top: msg.handler(c.id),
      callers: [],
      pending: undefined,
      resume: undefined,
      msg,
      savedIrq: c.irqEnabled,
      spinWait: null,
      rmwLoop: null,
    };
    c.irqEnabled = false;
    c.irq = frame;
    this.advanceIrq(c, frame);
  }

  private stepIrq(c: Cpu): void {
    const frame = c.irq!;
    const e = frame.pending!;
    if (e.kind === EffectKind.Block) {
      this.fail(
        'might-sleep',
        `IPI handler on CPU ${c.id} tried to sleep on '${e.wq.label}' in interrupt context`,
        c.id,
        'irq',
      );
    }
    if (e.kind === EffectKind.Ipi) {
      this.fail('ipi', `IPI handler on CPU ${c.id} tried to send an IPI from interrupt context`, c.id, 'irq');
    }
    if (e.kind === EffectKind.Yield) {
      // schedule() from a hard interrupt: the hardirq count makes in_atomic() true, so Linux reports it.
      this.fail(
        'might-sleep',
        `interrupt handler '${frame.msg.req.label}' on CPU ${c.id} called yieldCpu() in interrupt context: scheduling while atomic`,
        c.id,
        'irq',
      );
    }
    frame.resume = this.perform(c, null, e);
    const loop = frame.rmwLoop;
    if (loop !== null) {
      // A compare-and-exchange retry loop: the handler's code runs only once the loop is over.
      if (this.rmwLoopAgain(loop, c, 'irq')) return;
      frame.rmwLoop = null;
    }
    const w = frame.spinWait;
    if (w !== null) {
      // A spin-wait in interrupt context is performed step by step; its code runs after every iteration.
      if (e === w.spin) {
        frame.pending = w.read;
        return;
      }
      frame.spinWait = null;
    }
    this.advanceIrq(c, frame);
  }

  private advanceIrq(c: Cpu, frame: IrqFrame): void {
    let r: IteratorResult<Effect, unknown>;
    try {
      r = resumeCalls(frame, frame.resume);
    } catch (err) {
      this.failFromError(err, c.id, 'irq');
    }
    if (r.done) {
      const req = frame.msg.req;
      req.remaining--;
      this.markDirty(frame.msg.from);
      if (c.clock > req.ackTime) req.ackTime = c.clock;
      c.irq = null;
      c.irqEnabled = frame.savedIrq;
    } else if (r.value.kind === EffectKind.SpinWait) {
      frame.spinWait = r.value;
      frame.pending = r.value.spin;
    } else if (r.value.kind === EffectKind.RmwLoop) {
      frame.rmwLoop = r.value;
      frame.pending = r.value.rmw;
    } else frame.pending = r.value;
  }

  /** Runs an {@link RmwLoopEffect}'s `step` after an attempt: whether the loop attempts again. */
  private rmwLoopAgain(loop: RmwLoopEffect, c: Cpu, who: string): boolean {
    try {
      return loop.step();
    } catch (err) {
      this.failFromError(err, c.id, who);
    }
  }

  private stepTask(c: Cpu, t: Task): void {
    if (t.wokenAt > c.clock) c.clock = t.wokenAt;
    if (t.started) {
      if (c.waitingIpi !== null) {
        // The IPI was sent earlier; every target has acknowledged.
        const ack = c.waitingIpi.ackTime + this.cost.lineTransfer;
        if (ack > c.clock) c.clock = ack;
        c.waitingIpi = null;
        t.resume = undefined;
      } else {
        const e = t.pending!;
        if (e.kind === EffectKind.Block) {
          if (this.performBlock(c, t, e)) return;
          t.resume = undefined;
        } else if (e.kind === EffectKind.Yield && !t.yielded && this.yieldSwitched(c, t)) {
          return;
        } else if (e.kind === EffectKind.Ipi) {
          if (this.performIpi(c, e)) return;
          t.resume = undefined;
        } else {
          t.resume = this.perform(c, t, e);
          const loop = t.rmwLoop;
          if (loop !== null) {
            // A compare-and-exchange retry loop: after a failed attempt the next one is performed without
            // resuming the task's code (and the generator frames between it and the machine).
            if (this.rmwLoopAgain(loop, c, t.name)) {
              this.maybePreempt(c, t);
              return;
            }
            t.rmwLoop = null;
          }
          const w = t.spinWait;
          if (w !== null) {
            // A pure spin-wait's next step, without running the task's code when it cannot decide anything new.
            const step = advanceSpin(t, w, e);
            if (step !== null) {
              if (step === 'skipped') this.spinsSkipped++;
              this.spinStep = true;
              this.maybePreempt(c, t);
              return;
            }
          }
        }
      }
    } else {
      t.started = true;
      this.record(c, EffectKind.Self, null, 'start', c.clock);
    }
    let r: IteratorResult<Effect, unknown>;
    try {
      r = resumeCalls(t, t.resume);
    } catch (err) {
      this.failFromError(err, c.id, t.name);
    }
    if (r.done) {
      t.state = 'done';
      t.result = r.value;
      t.pending = undefined;
      this.live--;
      this.switchAway(c);
      return;
    }
    const next = r.value;
    if (t.spinWait !== null) {
      const impure = checkResumed(c, t, t.spinWait, next);
      if (impure !== null) this.fail('impure-spin', impure, c.id, t.name);
    }
    if (next.kind === EffectKind.RmwLoop) {
      t.spinWait = null;
      t.rmwLoop = next;
      t.pending = next.rmw;
    } else enterYielded(t, next);
    this.maybePreempt(c, t);
  }

  /**
   * A task's `yieldCpu()`. Models `cond_resched()` / `schedule()` in kernel/sched/core.c: with
   * CONFIG_DEBUG_ATOMIC_SLEEP, `cond_resched()` first runs `__might_resched()`, which reports "BUG: sleeping
   * function called from invalid context" when interrupts are off or the preempt count is not zero, and
   * `schedule_debug()` reports "BUG: scheduling while atomic" (`__schedule_bug()`) for a preempt count. We stop
   * the run with a `might-sleep` failure in both cases, whether or not another task is waiting (as the kernel's
   * checks do: a bug that only shows under contention would otherwise hide in most runs). Otherwise the task
   * goes to the back of a non-empty runqueue (the yield completes when it runs again) and this returns true;
   * with nobody else to run, the yield costs nothing and this returns false.
   */
  private yieldSwitched(c: Cpu, t: Task): boolean {
    const atomic: string[] = [];
    if (!c.irqEnabled) atomic.push('interrupts disabled');
    if (t.preemptCount > 0) atomic.push(`preempt count ${t.preemptCount}, e.g. with a spinlock held`);
    if (atomic.length > 0) {
      this.fail(
        'might-sleep',
        `task ${t.name} on CPU ${c.id} called yieldCpu() in atomic context (${atomic.join('; ')}): scheduling while atomic`,
        c.id,
        t.name,
      );
    }
    if (c.runqueue.length === 0) return false;
    this.record(c, EffectKind.Yield, null, '', c.clock);
    t.yielded = true;
    c.runqueue.push(t);
    this.switchAway(c);
    return true;
  }

  /** The tick: a task that ran past its slice goes to the back of a non-empty runqueue. */
  private maybePreempt(c: Cpu, t: Task): void {
    if (c.runqueue.length > 0 && c.clock >= c.nextTick && c.irqEnabled && t.preemptCount === 0) {
      c.nextTick = c.clock + this.cost.tick;
      c.runqueue.push(t);
      this.switchAway(c);
    }
  }

  /**
   * Called after a long run of steps that ran no kernel code: if every CPU that can still step is stuck in a
   * pure spin-wait (see `describeStuckSpinner`), no CPU is left to write any of those lines, and the run
   * stops with a `spin-forever` failure instead of spinning to the step limit.
   */
  private checkSpinForever(): void {
    const parts: string[] = [];
    for (const c of this.cpus) {
      if (!this.isEnabled(c)) continue;
      const stuck = describeStuckSpinner(c);
      if (stuck === null) return;
      parts.push(stuck);
    }
    if (parts.length === 0) return;
    this.fail(
      'spin-forever',
      `no CPU is left to write the lines these pure spin-waits wait for (every other task has finished or sleeps): ${parts.join('; ')}`,
      -1,
      null,
    );
  }

  /** Makes the next queued task current (after the current one slept, exited or was preempted). */
  private switchAway(c: Cpu): void {
    const next = c.runqueue.shift();
    c.current = next ?? null;
    if (next) c.clock += this.cost.contextSwitch;
  }

  /** Returns true if the task went to sleep. */
  private performBlock(c: Cpu, t: Task, e: BlockEffect): boolean {
    if (!c.irqEnabled) {
      this.fail(
        'might-sleep',
        `task ${t.name} on CPU ${c.id} sleeps on '${e.wq.label}' with interrupts disabled`,
        c.id,
        t.name,
      );
    }
    if (t.preemptCount > 0) {
      this.fail(
        'might-sleep',
        `task ${t.name} on CPU ${c.id} sleeps on '${e.wq.label}' in atomic context (preempt count ${t.preemptCount}, e.g. with a spinlock held)`,
        c.id,
        t.name,
      );
    }
    const woken = t.woken;
    t.woken = false;
    const proceed = e.until ? e.until() : woken;
    this.record(c, EffectKind.Block, null, e.label ?? e.wq.label, c.clock);
    if (proceed) {
      t.waitingOn = undefined;
      t.blockEffect = undefined;
      return false;
    }
    t.state = 'blocked';
    t.waitingOn = e.wq;
    t.blockEffect = e;
    e.wq.sleepers.push(t);
    this.switchAway(c);
    return true;
  }

  /** Sends an IPI; returns true if the sender must now wait for acknowledgements. */
  private performIpi(c: Cpu, e: IpiEffect): boolean {
    const req: IpiRequest = { remaining: 0, ackTime: 0, label: e.label ?? 'ipi' };
    const start = c.clock;
    if (e.deviceAfterNs !== undefined) {
      if (!(e.deviceAfterNs >= 0) || !Number.isFinite(e.deviceAfterNs)) {
        this.fail(
          'exception',
          `device interrupt in ${e.deviceAfterNs} ns; the delay must be a finite number >= 0`,
          c.id,
          c.current?.name ?? null,
        );
      }
      req.remaining = 1;
      this.markDirty(c.id);
      c.inbox.push({ handler: e.handler, arrival: c.clock + e.deviceAfterNs, req, from: c.id });
      this.record(c, EffectKind.Ipi, null, `${req.label} (device irq in ${e.deviceAfterNs} ns)`, start);
      return false;
    }
    for (const target of e.targets) {
      if (!Number.isInteger(target) || target < 0 || target >= this.cpuCount || target === c.id) {
        this.fail(
          'ipi',
          `CPU ${c.id} sent an IPI to ${target}; targets must be other CPUs of this machine (0 to ${this.cpuCount - 1})`,
          c.id,
          c.current?.name ?? null,
        );
      }
      c.clock += this.cost.ipiSend;
      req.remaining++;
      this.markDirty(target);
      this.cpus[target].inbox.push({
        handler: e.handler,
        arrival: c.clock + this.cost.ipiLatency,
        req,
        from: c.id,
      });
    }
    this.record(c, EffectKind.Ipi, null, `${req.label} -> ${e.targets.join(',')}`, start);
    if (e.wait && req.remaining > 0) {
      c.waitingIpi = req;
      return true;
    }
    return false;
  }

  /** Performs a non-blocking effect for the task (or IRQ handler when `t` is null); returns its value. */
  private perform(c: Cpu, t: Task | null, e: Effect): unknown {
    const start = c.clock;
    const cost = this.cost;
    switch (e.kind) {
      case EffectKind.Read:
      case EffectKind.Write:
      case EffectKind.Rmw:
        this.access(c, e);
        return undefined;
      case EffectKind.Spin:
        c.clock += cost.pause;
        this.record(c, e.kind, null, e.label ?? '', start);
        return undefined;
      case EffectKind.Fence:
        c.clock += cost.fence;
        this.record(c, e.kind, null, '', start);
        return undefined;
      case EffectKind.IrqDisable: {
        const was = c.irqEnabled;
        c.irqEnabled = false;
        c.clock += cost.irqToggle;
        this.record(c, e.kind, null, '', start);
        return was;
      }
      case EffectKind.IrqEnable:
        if (t === null) this.fail('irq', `IPI handler on CPU ${c.id} enabled interrupts`, c.id, 'irq');
        c.irqEnabled = true;
        c.clock += cost.irqToggle;
        this.record(c, e.kind, null, '', start);
        return undefined;
      case EffectKind.IrqRestore:
        if (t === null && e.enabled)
          this.fail('irq', `IPI handler on CPU ${c.id} enabled interrupts`, c.id, 'irq');
        c.irqEnabled = e.enabled;
        c.clock += cost.irqToggle;
        this.record(c, e.kind, null, '', start);
        return undefined;
      case EffectKind.Wake: {
        let n = 0;
        while (n < e.count && e.wq.sleepers.length > 0) {
          this.wakeOne(c, e.wq.sleepers.shift()!);
          n++;
        }
        this.record(c, e.kind, null, `${e.wq.label} (${n})`, start);
        return n;
      }
      case EffectKind.WakeTask: {
        const w = e.task;
        let woke = false;
        if (w.state === 'blocked') {
          const q = w.waitingOn!.sleepers;
          q.splice(q.indexOf(w), 1);
          this.wakeOne(c, w);
          woke = true;
        } else if (w.state === 'runnable') w.woken = true;
        this.record(c, e.kind, null, w.name, start);
        return woke;
      }
      case EffectKind.Delay:
        if (!(e.ns >= 0) || !Number.isFinite(e.ns)) {
          this.fail(
            'exception',
            `delay of ${e.ns} ns; a delay must be a finite number >= 0`,
            c.id,
            t?.name ?? 'irq',
          );
        }
        c.clock += e.ns;
        this.record(c, e.kind, null, e.label ?? '', start);
        return undefined;
      case EffectKind.Now:
        return c.clock;
      case EffectKind.Self: {
        const task = t ?? c.current;
        const inIrq = t === null;
        const s = c.selfInfo;
        if (s !== null && s.task === task && s.inIrq === inIrq && s.irqsEnabled === c.irqEnabled) return s;
        c.selfInfo = { cpu: c.id, task: task as Task, inIrq, irqsEnabled: c.irqEnabled };
        return c.selfInfo;
      }
      case EffectKind.Yield:
        if (t !== null) t.yielded = false;
        return undefined;
      default:
        this.fail(
          'exception',
          `kernel code yielded ${JSON.stringify(e)}, which is not a machine effect; yield* the helpers (read, write, rmw, block, ...) instead of yielding values`,
          c.id,
          t?.name ?? 'irq',
        );
    }
  }

  private wakeOne(waker: Cpu, w: Task): void {
    w.state = 'runnable';
    w.woken = true;
    w.waitingOn = undefined;
    w.wokenAt = waker.clock + this.cost.lineTransfer;
    waker.clock += this.cost.lineTransfer;
    const target = this.cpus[w.cpu];
    this.markDirty(w.cpu);
    if (target.current === null) target.current = w;
    else target.runqueue.push(w);
  }

  /** Charges a memory access under the coherence model and records it. */
  private access(c: Cpu, e: MemoryEffect): void {
    const start = c.clock;
    c.clock = this.coherence.access(c.id, start, e);
    this.history.record(c, e.kind, e.line.id, e.label ?? e.line.label, start, this.step);
  }

  private record(c: Cpu, kind: number, line: MemoryLine | null, label: string, start: number): void {
    this.history.record(c, kind, line === null ? -1 : line.id, label, start, this.step);
  }

  // ---- failures --------------------------------------------------------------------------------------

  private failFromError(err: unknown, cpu: number, task: string | null): never {
    if (err instanceof StopRun) throw err;
    if (err instanceof ScheduleDivergenceError) throw err;
    if (err instanceof KernelFault) this.fail(err.kind, err.message, cpu, task, err.stack);
    const e = err instanceof Error ? err : new Error(String(err));
    this.fail('exception', `${e.name}: ${e.message}`, cpu, task, e.stack);
  }

  /** Stops the run with a failure of `kind`. Usable by memory layers that detect a fault outside a task. */
  fail(kind: string, message: string, cpu: number, task: string | null, stack?: string): never {
    // The failing step counts: the schedule includes it so that replay stops at the same place.
    const steps = cpu >= 0 ? this.step + 1 : this.step;
    this.failure = {
      kind,
      message,
      cpu,
      task,
      step: steps,
      time: cpu >= 0 ? this.cpus[cpu].clock : Math.max(...this.cpus.map((c) => c.clock)),
      policy: this.policy.name,
      seed: this.seed,
      schedule: encodeSchedule(this.choices, steps),
      cpus: this.cpus.map(cpuReport),
      lastEvents: this.history.lastEvents(),
      ...(stack ? { stack } : {}),
    };
    if (cpu >= 0) this.step = steps;
    throw new StopRun(message);
  }
}

export type { WaitQueue };
