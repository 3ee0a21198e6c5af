import {
  boot,
  faultHandlerByName,
  type Process,
  parseSpecOptions,
  runReplay,
  type System,
  type UserContext,
  UserSignal,
} from '@spf/kernel';
import * as kernelApi from '@spf/kernel';
import { transpileStudent } from '@spf/labs';
import {
  block,
  type CompactTrace,
  type ExploreOptions,
  explore,
  formatFailure,
  type Kernel,
  Machine,
  type Policy,
  parsePolicy,
  replay,
  type TraceEvent,
  toChromeTrace,
  toCompactTrace,
  WaitQueue,
  wake,
} from '@spf/machine';
import { dumpPageTables } from '@spf/pagetable';
import * as vma from '@spf/vma';
import { PROGRAM_API } from './program-api.js';
import { type PlaygroundSettings, validateSettings } from './settings.js';

export { PROGRAM_API };

/** Events the playground records at most (the Chrome trace and the timeline are built from them). */
export const PLAYGROUND_TRACE_LIMIT = 100_000;
/** Steps a playground run may take before it is stopped as a livelock (or a program too big for a page). */
export const PLAYGROUND_MAX_STEPS = 5_000_000;
/** Page-table dump lines kept per snapshot. */
const DUMP_LINES = 400;
/** The user half of the x86-64 address space (4-level paging). */
const USER_END = 2 ** 47;

/** A task's fault counters (`task_struct`'s `min_flt`/`maj_flt`). */
export type TaskCounters = {
  readonly pid: number;
  readonly tid: number;
  readonly cpu: number;
  readonly minflt: number;
  readonly majflt: number;
};

/** What `show(u, label)` (and the end of every spawned program) captured of one process. */
export type Snapshot = {
  readonly label: string;
  readonly pid: number;
  readonly process: string;
  /** Simulated time of the snapshot (ns). */
  readonly time: number;
  /** /proc/self/maps of the process. */
  readonly maps: string;
  /** The page tables of its mm, one line per non-empty entry, with each entry's flags. */
  readonly pageTables: string;
  readonly tasks: readonly TaskCounters[];
};

export type PlaygroundResult = {
  /** The program could not run at all (bad settings, a syntax error, an unknown design option). */
  readonly error: string | null;
  /** The exploration that chose the shown schedule (settings.explore > 0), or null for a single run. */
  readonly explored: { readonly policy: string; readonly runs: number; readonly found: boolean } | null;
  /** The simulated run stopped with a failure report (a kernel bug found, a check that fired, a deadlock). */
  readonly failure: {
    readonly kind: string;
    readonly message: string;
    readonly report: string;
    readonly schedule: string;
  } | null;
  readonly printed: readonly string[];
  /** Kernel log lines (signals, OOM). */
  readonly log: readonly string[];
  readonly processes: readonly {
    readonly pid: number;
    readonly name: string;
    readonly status: string;
    readonly tasks: readonly TaskCounters[];
  }[];
  readonly snapshots: readonly Snapshot[];
  /** /proc/vmstat-style counters of the fault path. */
  readonly vmstat: string;
  /** A replay script's output, exactly as `spf replay` prints it. */
  readonly replayOutput: string | null;
  readonly steps: number;
  readonly time: number;
  readonly trace: CompactTrace | null;
  /** The trace reached {@link PLAYGROUND_TRACE_LIMIT} events; later ones were not recorded. */
  readonly traceFull: boolean;
  /** Chrome Trace Event JSON of the run (opens in https://ui.perfetto.dev). */
  readonly chromeTrace: string | null;
};

const empty = (error: string): PlaygroundResult => ({
  error,
  explored: null,
  failure: null,
  printed: [],
  log: [],
  processes: [],
  snapshots: [],
  vmstat: '',
  replayOutput: null,
  steps: 0,
  time: 0,
  trace: null,
  traceFull: false,
  chromeTrace: null,
});

const messageOf = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * The constants a program may use by name: @spf/vma's PROT_*, MAP_*, MREMAP_*, MADV_*, and @spf/kernel's
 * open(2) flags O_* and posix_fadvise(2) advice POSIX_FADV_* for the file system at /mnt.
 */
const PROGRAM_CONSTANTS: Readonly<Record<string, number>> = Object.fromEntries(
  [...Object.entries(vma), ...Object.entries(kernelApi)].filter(
    (e): e is [string, number] =>
      /^(PROT|MAP|MREMAP|MADV|O|POSIX_FADV)_[A-Z_0-9]+$/.test(e[0]) && typeof e[1] === 'number',
  ),
);

/** Per-task fault counters of a process. */
function taskCounters(p: Process): TaskCounters[] {
  return p.threads.map((t) => ({
    pid: p.pid,
    tid: t.tid,
    cpu: t.cpu,
    minflt: t.counters.minflt,
    majflt: t.counters.majflt,
  }));
}

function statusText(p: Process): string {
  const s = p.status;
  if (s === null) return 'still running when the run stopped';
  if (s.kind === 'exited') return `exited with ${s.code}`;
  return `killed by ${s.signal.signal} (${s.signal.code})`;
}

function chromeTraceJson(events: readonly TraceEvent[], cpus: number): string {
  return JSON.stringify(toChromeTrace(events, cpus));
}

/**
 * Compiles a program: TypeScript (types erased by the labs' transpiler, so line numbers stay the student's)
 * run as a function body with the playground's names in scope. Imports are refused: everything a program
 * needs is in scope.
 */
function compileProgram(source: string): (api: Record<string, unknown>) => void {
  const js = transpileStudent('program.ts', source);
  // Checked on the source: sucrase drops imports whose names are unused, which would hide the mistake.
  if (/^\s*(import|export)\b[^(]/m.test(source)) {
    throw new Error(
      `a playground program cannot import or export: ${Object.keys(PROGRAM_API).join(', ')}, the PROT_*/MAP_*/MREMAP_*/MADV_*/O_*/POSIX_FADV_* constants and the UserContext methods are already in scope`,
    );
  }
  const names = [...Object.keys(PROGRAM_API), ...Object.keys(PROGRAM_CONSTANTS)];
  // biome-ignore lint/security/noGlobalEval: the program runs in the playground's worker, never in the page
  const body = new Function(...names, `"use strict";\n${js}`) as (...args: unknown[]) => void;
  return (api) => body(...names.map((n) => api[n]));
}

/**
 * Runs one playground request: boots a system as the settings say (CPUs, policy, seed, fault handler with
 * its options, mmap lock), runs the program or replay script on it with a trace, and returns everything the
 * page shows. Never throws: what went wrong is in `error` (could not run) or `failure` (the run stopped).
 */
export function runPlayground(rawSettings: unknown): PlaygroundResult {
  let settings: PlaygroundSettings;
  try {
    settings = validateSettings(rawSettings);
  } catch (e) {
    return empty(messageOf(e));
  }
  let faultHandler: ReturnType<typeof faultHandlerByName>;
  try {
    faultHandler = faultHandlerByName(settings.handler, parseSpecOptions(settings.specOptions));
  } catch (e) {
    return empty(messageOf(e));
  }
  return settings.mode === 'replay'
    ? runReplayMode(settings, faultHandler)
    : runProgramMode(settings, faultHandler);
}

function runReplayMode(
  settings: PlaygroundSettings,
  faultHandler: ReturnType<typeof faultHandlerByName>,
): PlaygroundResult {
  try {
    const run = runReplay(settings.source, { faultHandler, trace: true });
    const r = run.result;
    const events = r.trace ?? [];
    const cpus = r.clocks.length;
    return {
      ...empty(''),
      error: null,
      failure: r.failure
        ? {
            kind: r.failure.kind,
            message: r.failure.message,
            report: formatFailure(r.failure),
            schedule: r.schedule,
          }
        : null,
      log: [...r.log],
      replayOutput: run.output,
      steps: r.steps,
      time: r.time,
      trace: toCompactTrace(events, cpus),
      chromeTrace: chromeTraceJson(events, cpus),
    };
  } catch (e) {
    return empty(messageOf(e));
  }
}

/** One booted system with the program's processes spawned on it, and what the program records as it runs. */
type Prepared = {
  readonly system: System;
  readonly printed: string[];
  readonly snapshots: Snapshot[];
};

/**
 * Boots a system on `machine` as the settings say and calls the program, which spawns its processes. Called
 * once per run: an exploration calls it for every schedule, so nothing is shared between runs.
 */
function prepare(
  settings: PlaygroundSettings,
  faultHandler: ReturnType<typeof faultHandlerByName>,
  program: (api: Record<string, unknown>) => void,
  machine: Machine,
): Prepared {
  const system = boot({ machine, faultHandler, mmapLock: settings.mmapLock, memory: 64 * 1024 * 1024 });
  const printed: string[] = [];
  const snapshots: Snapshot[] = [];
  const snapshot = (u: UserContext, label: string): void => {
    const p = u.process;
    snapshots.push({
      label,
      pid: p.pid,
      process: p.name,
      time: machine.clock(u.thread.cpu),
      maps: u.maps(),
      pageTables: dumpPageTables(p.mm.pgd, 0, USER_END, { maxLines: DUMP_LINES, nonPresent: true }),
      tasks: taskCounters(p),
    });
  };
  const checkCpu = (cpu: unknown, what: string): number => {
    if (typeof cpu !== 'number' || !Number.isInteger(cpu) || cpu < 0 || cpu >= settings.cpus) {
      throw new Error(
        `${what}: cpu must be a whole number from 0 to ${settings.cpus - 1} (the machine has ${settings.cpus} CPUs), got ${String(cpu)}`,
      );
    }
    return cpu;
  };
  const api: Record<string, unknown> = {
    ...PROGRAM_CONSTANTS,
    PAGE: 4096,
    system,
    UserSignal,
    spawn(name: unknown, body: unknown, cpu: unknown = 0) {
      if (typeof name !== 'string' || typeof body !== 'function') {
        throw new Error(
          'spawn(name, function* (u) {...}, cpu): name must be a string and the program a generator function',
        );
      }
      const run = body as (u: UserContext) => Kernel<unknown>;
      return system.spawnProcess(
        name,
        function* (u) {
          const r = yield* run(u);
          snapshot(u, `${name} at exit`);
          return r;
        },
        { cpu: checkCpu(cpu, `spawn("${name}")`) },
      ).pid;
    },
    *thread(
      u: UserContext,
      cpu: unknown,
      body: (t: UserContext) => Kernel<unknown>,
    ): Kernel<() => Kernel<void>> {
      let done = false;
      const q = new WaitQueue('join');
      yield* u.spawnThread(
        function* (t) {
          try {
            yield* body(t);
          } finally {
            done = true;
            yield* wake(q);
          }
        },
        checkCpu(cpu, 'thread()'),
      );
      return () => block(q, () => done, 'join');
    },
    show: snapshot,
    print: (...values: unknown[]) => {
      printed.push(values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(' '));
    },
    check(ok: unknown, message: unknown) {
      if (!ok) throw new Error(`check failed: ${String(message)}`);
    },
  };
  try {
    program(api);
  } catch (e) {
    throw new ProgramSetupError(`the program threw before the machine started: ${messageOf(e)}`);
  }
  if (system.processes.length === 0) {
    throw new ProgramSetupError('the program started no process: call spawn("name", function* (u) { ... })');
  }
  return { system, printed, snapshots };
}

/** The program failed before any simulated step: its top level threw or spawned nothing. */
class ProgramSetupError extends Error {
  override name = 'ProgramSetupError';
}

/** The policy of an exploration (`random:<seed>` or `pct:<seed>[:<depth>]`) as {@link explore} takes it. */
function exploreOptions(policy: string, runs: number): ExploreOptions {
  const [kind, seed, depth] = policy.split(':');
  if (kind !== 'random' && kind !== 'pct') {
    throw new Error(
      `exploring needs a random:<seed> or pct:<seed>[:<depth>] policy (timed has one schedule), got ${policy}`,
    );
  }
  return {
    policy: kind,
    runs,
    seed: seed ? Number(seed) : 1,
    ...(kind === 'pct' && depth ? { depth: Number(depth) } : {}),
  };
}

function runProgramMode(
  settings: PlaygroundSettings,
  faultHandler: ReturnType<typeof faultHandlerByName>,
): PlaygroundResult {
  let program: (api: Record<string, unknown>) => void;
  let policy: Policy;
  let explored: PlaygroundResult['explored'] = null;
  try {
    program = compileProgram(settings.source);
    policy = parsePolicy(settings.policy);
    if (settings.explore > 0) {
      const opts = exploreOptions(settings.policy, settings.explore);
      const res = explore(
        {
          name: 'playground',
          cpus: settings.cpus,
          machineSeed: settings.seed,
          maxSteps: PLAYGROUND_MAX_STEPS,
          setup: (m) => {
            prepare(settings, faultHandler, program, m);
          },
        },
        opts,
      );
      explored = { policy: res.policy, runs: res.runs, found: res.failure !== null };
      // Show the failing schedule (replayed, now with a trace), or the exploration's first schedule.
      if (res.failure) policy = replay(res.failure.schedule);
    }
  } catch (e) {
    return empty(messageOf(e));
  }
  let prepared: Prepared;
  try {
    const machine = new Machine({
      cpus: settings.cpus,
      seed: settings.seed,
      policy,
      trace: { limit: PLAYGROUND_TRACE_LIMIT },
      maxSteps: PLAYGROUND_MAX_STEPS,
    });
    prepared = prepare(settings, faultHandler, program, machine);
  } catch (e) {
    return empty(e instanceof ProgramSetupError ? e.message : messageOf(e));
  }
  const { system, printed, snapshots } = prepared;
  const r = system.run();
  const events = r.trace ?? [];
  return {
    error: null,
    explored,
    failure: r.failure
      ? {
          kind: r.failure.kind,
          message: r.failure.message,
          report: formatFailure(r.failure),
          schedule: r.schedule,
        }
      : null,
    printed,
    log: [...r.log],
    processes: system.processes.map((p) => ({
      pid: p.pid,
      name: p.name,
      status: statusText(p),
      tasks: taskCounters(p),
    })),
    snapshots,
    vmstat: system.vmstat.toString(),
    replayOutput: null,
    steps: r.steps,
    time: r.time,
    trace: toCompactTrace(events, settings.cpus),
    traceFull: events.length >= PLAYGROUND_TRACE_LIMIT,
    chromeTrace: chromeTraceJson(events, settings.cpus),
  };
}
