import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Sources, transpileEarlier, transpileSources } from '../grade.js';
import type { Lab } from '../lab.js';
import type { GradeReport } from '../result.js';
import { getLab } from '../registry.js';
import { withAncestors } from '../test-chain.js';
import {
  gradeWithWatchdog,
  type WatchdogOptions,
  type WorkerMessage,
  type WorkerPort,
} from '../worker-protocol.js';
import { testDirectory } from './instructor-tests.js';
import { isAuthentic, type SandboxRequest } from './sandbox-protocol.js';

/** Limits of a sandboxed grading run. */
export type SandboxOptions = WatchdogOptions & {
  /** V8 heap limit of the grading process in MiB (default 512). */
  readonly heapMiB?: number;
  /** Resident memory limit in MiB, heap and off-heap (ArrayBuffers) together (default 1024; Linux only). */
  readonly memoryMiB?: number;
  /** The child's entry file (tests replace it with a misbehaving child). */
  readonly entry?: string;
  /** Run only this test and its ancestors (`spf-grade --test <id>`). */
  readonly only?: string;
  /**
   * An instructor's test modules (absolute paths; `spf-grade --tests <dir>`): the child may read their
   * directories, loads them before any student code, and runs them after the lab's tests. Pass the lab
   * extended with the same tests (`withInstructorTests`) as `lab`.
   */
  readonly testFiles?: readonly string[];
  /** Earlier labs' solutions the lab builds on (`spf-grade --with`), by lab id. */
  readonly earlier?: Readonly<Record<string, Sources>>;
};

const DEFAULT_HEAP_MIB = 512;
const DEFAULT_MEMORY_MIB = 1024;
const POLL_MS = 25;
/** Node 20 calls the permission model experimental; Node 22.13 and later name the flag `--permission`. */
const PERMISSION_FLAG = process.allowedNodeEnvironmentFlags.has('--permission')
  ? '--permission'
  : '--experimental-permission';
const require = createRequire(import.meta.url);

/** The directory of the package.json above `file`. */
function packageRoot(file: string): string {
  let d = dirname(file);
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
}

/**
 * What the child may read: this package and every @spf package it loads, followed through each package's own
 * dependencies (so a package that @spf/kernel starts to depend on is readable without a change here), at
 * their real paths.
 */
function readablePaths(entry: string): string[] {
  const self = packageRoot(fileURLToPath(import.meta.url));
  const roots = new Set<string>();
  const visit = (name: string, from: NodeJS.Require): void => {
    const root = packageRoot(realpathSync(from.resolve(name)));
    if (roots.has(root)) return;
    roots.add(root);
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    const own = createRequire(join(root, 'package.json'));
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (dep.startsWith('@spf/')) visit(dep, own);
    }
  };
  for (const p of [
    '@spf/machine',
    '@spf/pagetable',
    '@spf/locks',
    '@spf/vma',
    '@spf/fault-classic',
    '@spf/fault-spec',
    '@spf/kernel',
  ]) {
    visit(p, require);
  }
  return [...new Set([realpathSync(self), self, ...roots, dirname(realpathSync(entry))])];
}

/** Resident set size of a process in KiB, from /proc (undefined where there is no /proc). */
function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Why the child ended without an authenticated report, in words for the student. */
function exitReason(
  code: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
  heapMiB: number,
  forged: number,
): string {
  const forgedNote =
    forged > 0
      ? `; it also sent ${forged} message(s) without the run's secret, which were ignored (a forged report?)`
      : '';
  if (/heap out of memory|Reached heap limit/i.test(stderr)) {
    return `your code ran out of memory: the grading process exceeded its ${heapMiB} MiB JavaScript heap (a structure that keeps growing?)${forgedNote}`;
  }
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return `the grading process ${how} before it sent an authenticated report (lab code cannot end the process; this is a crash)${forgedNote}`;
}

/**
 * A {@link WorkerPort} over a sandboxed child process (sandbox-child.ts): Node's permission model with
 * reads limited to the grader's packages, no writes, child processes or workers; no code generation
 * from strings; frozen intrinsics; a heap limit; and a resident-memory limit watched from here. Every
 * message must carry a per-run secret that only the parent and the child's grader hold (it travels over
 * the IPC channel, never in argv or the environment); anything else is counted and ignored.
 */
function sandboxPort(
  js: ReadonlyMap<string, string>,
  opts: SandboxOptions,
  forged: { n: number },
): WorkerPort {
  const heapMiB = opts.heapMiB ?? DEFAULT_HEAP_MIB;
  const memoryMiB = opts.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const secret = randomBytes(32).toString('hex');
  const entry = opts.entry ?? fileURLToPath(new URL('./sandbox-child.js', import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      PERMISSION_FLAG,
      ...readablePaths(entry).map((p) => `--allow-fs-read=${p}`),
      ...[...new Set((opts.testFiles ?? []).map(testDirectory))].map((p) => `--allow-fs-read=${p}`),
      '--disallow-code-generation-from-strings',
      '--frozen-intrinsics',
      `--max-old-space-size=${heapMiB}`,
      '--no-warnings',
      entry,
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced', env: {} },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  let ended = false;
  let watch: ReturnType<typeof setInterval> | undefined;
  return {
    post(req) {
      // Earlier labs' solutions are transpiled here, like the lab's own files: the child has no transpiler.
      const earlier: NonNullable<SandboxRequest['earlier']> = transpileEarlier(
        Object.entries(req.earlier ?? {}).map(([id, sources]) => ({ lab: getLab(id), sources })),
      ).map(({ lab, js }) => [lab.id, js instanceof Map ? [...js] : (js as { error: string })] as const);
      const msg: SandboxRequest = {
        type: 'grade',
        lab: req.lab,
        js: [...js],
        secret,
        only: opts.only,
        ...(opts.testFiles?.length ? { testFiles: opts.testFiles } : {}),
        ...(req.schedules === undefined ? {} : { schedules: req.schedules }),
        ...(earlier.length === 0 ? {} : { earlier }),
      };
      child.send(msg);
    },
    listen(onMessage: (m: WorkerMessage) => void, onError: (message: string) => void) {
      child.on('message', (raw: unknown) => {
        if (isAuthentic(raw, secret)) onMessage(raw.message);
        else forged.n++;
      });
      child.on('error', (e) => {
        if (!ended) onError(`cannot start the grading process: ${e.message}`);
      });
      child.on('exit', (code, signal) => {
        clearInterval(watch);
        if (ended) return;
        ended = true;
        onError(exitReason(code, signal, stderr, heapMiB, forged.n));
      });
      watch = setInterval(() => {
        const kib = child.pid === undefined ? undefined : rssKiB(child.pid);
        if (kib !== undefined && kib > memoryMiB * 1024 && !ended) {
          ended = true;
          clearInterval(watch);
          child.kill('SIGKILL');
          onError(
            `your code used more than ${memoryMiB} MiB of memory (heap and buffers together); the run was stopped`,
          );
        }
      }, POLL_MS);
    },
    terminate() {
      ended = true;
      clearInterval(watch);
      child.kill('SIGKILL');
    },
  };
}

/**
 * Grades in a sandboxed child process under the watchdog: transpiles here (a syntax error needs no
 * process), then runs the lab's tests in the child. Needs the built package (dist/cli/sandbox-child.js).
 * The report is the child's only if it carried the run's secret; otherwise the run is reported as failed,
 * saying why.
 */
export async function gradeInSandbox(
  lab: Lab,
  sources: Sources,
  opts: SandboxOptions = {},
): Promise<GradeReport> {
  const t = transpileSources(lab, sources);
  if ('report' in t) return t.report;
  const forged = { n: 0 };
  const graded = opts.only === undefined ? lab : withAncestors(lab, opts.only);
  const report = await gradeWithWatchdog(graded, sources, () => sandboxPort(t.js, opts, forged), opts);
  if (forged.n === 0 || report.error) return report;
  return {
    ...report,
    error: { message: `ignored ${forged.n} message(s) from the grading process without the run's secret` },
  };
}
