import { classicFaultHandler, type PteFaultPaths, withPteFaultPaths } from '@spf/fault-classic';
import {
  type BootConfig,
  boot,
  type SignalInfo,
  type System,
  type UserContext,
  UserSignal,
} from '@spf/kernel';
import type { ExploreOptions, Kernel } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { traceStudent } from '../debug-probe.js';
import { TestFailure } from '../lab-errors.js';
import type { TestContext } from '../lab.js';

/** A user program as the kernel runs it. */
export type Program = (u: UserContext) => Kernel<void>;

/** The RAM of a lab system: small, so that a leak or a double free shows at once and booting is quick. */
export const LAB_MEMORY = 4 << 20;

/** What the lab tests' programs share: read-write, and a private anonymous mapping at a fixed address. */
export const RW = PROT_READ | PROT_WRITE;
export const ANON_FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
/** An address as the tests' messages print it. */
export const hex = (a: number): string => `0x${a.toString(16)}`;

/** mmap(at, pages * 4 KiB, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED), failing the test if it fails. */
export function* mapAnon(u: UserContext, at: number, pages: number, prot = RW): Kernel<void> {
  const r = yield* u.mmap(at, pages * 4096, prot, ANON_FIXED);
  if (!r.ok) throw new TestFailure(`mmap failed with errno ${r.errno}`);
}

/**
 * Runs `body` with `signals` caught, returning the signal that stopped it, or null when it ran to the end.
 * Any other exception (a kernel bug) goes on up.
 */
export function* catching(
  u: UserContext,
  body: () => Generator<unknown, void, unknown>,
  signals: readonly ('SIGSEGV' | 'SIGBUS')[] = ['SIGSEGV'],
): Generator<unknown, SignalInfo | null, unknown> {
  for (const s of signals) u.catchSignal(s);
  try {
    yield* body();
    return null;
  } catch (e) {
    if (e instanceof UserSignal) return e.info;
    throw e;
  }
}

/** An explorer search under PCT: `runs` schedules of `depth` priority changes from `seed`. */
export const pctSearch = (runs: number, depth: number, seed = 1): ExploreOptions => ({
  policy: 'pct',
  runs,
  seed,
  depth,
});

/**
 * The student's `do_anonymous_page()` and `do_wp_page()` as @spf/fault-classic's `PteFaultPaths`, each
 * reporting to the schedule debugger during a debug replay.
 */
export function studentPteFaultPaths(ctx: TestContext): PteFaultPaths {
  const doAnonymousPage = ctx.fn<PteFaultPaths['doAnonymousPage']>('do-anonymous-page.ts', 'doAnonymousPage');
  const doWpPage = ctx.fn<PteFaultPaths['doWpPage']>('do-wp-page.ts', 'doWpPage');
  return traceStudent({ doAnonymousPage, doWpPage }, ['doAnonymousPage', 'doWpPage']);
}

/** Boots @spf/kernel with the classic fault handler running the student's paths. */
export function bootWithPaths(paths: PteFaultPaths, config: BootConfig = {}): System {
  return boot({ memory: LAB_MEMORY, ...config, faultHandler: withPteFaultPaths(classicFaultHandler, paths) });
}

/**
 * Runs `program` as process `name` on a system with the student's paths (one timed run), and fails the
 * test with the kernel's own words if the run stopped (a broken invariant, a leak, a use of a freed page) or
 * the process did not exit normally (killed by SIGBUS, SIGSEGV, the OOM killer). Returns the system.
 */
export function runProgram(paths: PteFaultPaths, program: Program, config: BootConfig = {}): System {
  return runOnSystem(bootWithPaths(paths, { cpus: 2, ...config }), program);
}

/** Runs `program` as a process of the booted `sys` ({@link runProgram}'s checks); returns `sys`. */
export function runOnSystem(sys: System, program: Program, name = 'lab'): System {
  sys.spawnProcess(name, program);
  const r = sys.run();
  if (!r.ok) {
    const f = r.failure;
    throw new TestFailure(`the run stopped: ${f?.kind ?? 'failure'}: ${f?.message ?? '?'}`, {
      expected: 'the program runs to its end with the mm invariants intact',
      actual: `${f?.kind}: ${f?.message}`,
    });
  }
  requireCleanExit(sys);
  return sys;
}

/** Fails the test if a process of `sys` did not exit with status 0 (the kernel log says why). */
export function requireCleanExit(sys: System): void {
  for (const p of sys.processes) {
    const st = p.status;
    if (st === null || st.kind !== 'exited' || st.code !== 0) {
      throw new TestFailure(
        `process ${p.name}[${p.pid}] did not finish normally: ${sys.log.join('; ') || JSON.stringify(st)}`,
        { expected: 'exit status 0', actual: sys.log.join('\n') || JSON.stringify(st) },
      );
    }
  }
}

/** Fails with `what` unless `actual === expected`. */
export function expectEq<T>(actual: T, expected: T, what: string): void {
  if (actual !== expected)
    throw new TestFailure(what, { expected: String(expected), actual: String(actual) });
}
