import { HarnessError, HostUnavailableError } from './errors.js';
import { formatScript } from './format.js';
import { parseScript } from './parse.js';

// Node built-ins are looked up at call time (process.getBuiltinModule, Node >= 20.16) rather than imported,
// so that bundling @spf/kernel for a browser does not drag in child_process: there, probeHost() simply
// reports that the host cannot run the harness.
type ChildProcess = typeof import('node:child_process');
type Fs = typeof import('node:fs');
type Os = typeof import('node:os');
type Path = typeof import('node:path');
type Crypto = typeof import('node:crypto');
type Url = typeof import('node:url');

interface NodeModules {
  readonly cp: ChildProcess;
  readonly fs: Fs;
  readonly os: Os;
  readonly path: Path;
  readonly crypto: Crypto;
  readonly url: Url;
}

function node(): NodeModules | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: NodeJS.Process['getBuiltinModule'] } })
    .process;
  const get = proc?.getBuiltinModule;
  if (typeof get !== 'function') return null;
  return {
    cp: get('node:child_process'),
    fs: get('node:fs'),
    os: get('node:os'),
    path: get('node:path'),
    crypto: get('node:crypto'),
    url: get('node:url'),
  };
}

function requireNode(): NodeModules {
  const n = node();
  if (n === null) {
    throw new HostUnavailableError(
      'the host harness needs Node.js >= 20.16 (process.getBuiltinModule); run it from Node, not a browser',
    );
  }
  return n;
}

/** What the host can do for conformance runs. */
export interface HostProbe {
  /** The host runs Linux (the harness needs its syscalls and /proc). */
  readonly linux: boolean;
  /** A C compiler (`cc`) is on PATH. */
  readonly cc: boolean;
  /**
   * The host kernel maps the shared zero page on a read fault of private anonymous memory. When false,
   * run the simulator with its zero page switched off to match. False when unknown (see `pfnVisible`).
   */
  readonly zeroPage: boolean;
  /** /proc/self/pagemap shows PFNs (needs CAP_SYS_ADMIN); without them `zeroPage` cannot be detected. */
  readonly pfnVisible: boolean;
  /**
   * The host's RAM and swap in 4 KiB pages (`totalram_pages()`, `total_swap_pages` from sysinfo(2)), its
   * `vm.overcommit_memory` mode and `vm.overcommit_ratio`: what boot's `memory` and `overcommit` need to
   * refuse the same mappings the host refuses. Absent when the harness could not run.
   */
  readonly memory?: {
    readonly ramPages: number;
    readonly swapPages: number;
    readonly overcommitMode: 'guess' | 'always' | 'never';
    readonly overcommitRatio: number;
  };
  /**
   * What the file ops depend on: the directory the harness puts its files in ($SPF_HARNESS_DIR, else
   * /var/tmp; must be on a disk-backed filesystem), the `read_ahead_kb` of that filesystem's block device
   * (null when it has none), and how many pages one read fault on a cached file maps (fault_around_bytes /
   * 4096, measured: the harness maps a cached 512-page file, reads page 0 and counts the present pages).
   * Absent when the harness could not run or could not create files (then `filesReason` says why).
   */
  readonly files?: {
    readonly dir: string;
    readonly readAheadKb: number | null;
    readonly faultAroundPages: number;
  };
  /** Why the harness cannot run the file ops here, when `files` is absent but the harness ran. */
  readonly filesReason?: string;
  /** Why the harness cannot run here, when `linux` or `cc` is false or the harness would not build. */
  readonly reason?: string;
}

/** Path of the harness's C source: packages/kernel/conformance/harness.c (from src/ or dist/ alike). */
export function harnessSourcePath(): string {
  const n = requireNode();
  return n.url.fileURLToPath(new URL('../../conformance/harness.c', import.meta.url));
}

const compiled = new Map<string, string>();

/**
 * Compiles the C program `source` with the system's `cc` into a cache directory under the OS temp dir
 * (`spf-<cacheName>`), keyed by a hash of the source, and returns the executable's path. Concurrent callers
 * (parallel test workers) each build to a private file and rename it into place, so nobody runs a
 * half-written binary.
 *
 * @throws HostUnavailableError when the host is not Linux, there is no `cc`, or compilation fails.
 */
export function compileC(source: string, cacheName: string): string {
  const n = requireNode();
  const known = compiled.get(source);
  if (known !== undefined && n.fs.existsSync(known)) return known;
  if (n.os.platform() !== 'linux') {
    throw new HostUnavailableError(`${source} runs only on Linux; this host is ${n.os.platform()}`);
  }
  let text: string;
  try {
    text = n.fs.readFileSync(source, 'utf8');
  } catch {
    throw new HostUnavailableError(`cannot read the C source at ${source}`);
  }
  const hash = n.crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = n.path.join(n.os.tmpdir(), `spf-${cacheName}`);
  const exe = n.path.join(dir, `${n.path.basename(source, '.c')}-${hash}`);
  if (!n.fs.existsSync(exe)) {
    n.fs.mkdirSync(dir, { recursive: true });
    // Worker threads share a pid, so the private name also carries random bytes.
    const tmp = `${exe}.${process.pid}.${n.crypto.randomBytes(6).toString('hex')}.tmp`;
    const cc = n.cp.spawnSync('cc', ['-O1', '-std=gnu11', '-Wall', '-o', tmp, source], { encoding: 'utf8' });
    if (cc.error !== undefined) {
      throw new HostUnavailableError(
        `cannot run the C compiler \`cc\` (${cc.error.message}); install gcc or clang`,
      );
    }
    if (cc.status !== 0) {
      n.fs.rmSync(tmp, { force: true });
      throw new HostUnavailableError(`\`cc\` failed to compile ${source}:\n${cc.stderr}`);
    }
    n.fs.renameSync(tmp, exe);
  }
  compiled.set(source, exe);
  return exe;
}

/**
 * Compiles the conformance harness ({@link harnessSourcePath}) with {@link compileC} and returns the
 * executable's path.
 *
 * @throws HostUnavailableError when the host is not Linux, there is no `cc`, or compilation fails.
 */
export function compileHarness(): string {
  return compileC(harnessSourcePath(), 'replay-harness');
}

/** Options of {@link runOnHost}. */
export interface RunOnHostOptions {
  /** Kill the harness after this many milliseconds (default 60 000). */
  readonly timeoutMs?: number;
}

function runHarness(args: readonly string[], input: string, timeoutMs: number): string {
  const n = requireNode();
  const exe = compileHarness();
  const r = n.cp.spawnSync(exe, args, { input, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 28 });
  if (r.error !== undefined) {
    throw new HarnessError(`the harness ${exe} could not run: ${r.error.message}`, null, r.stderr ?? '');
  }
  if (r.status !== 0) {
    const how = r.status === null ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
    throw new HarnessError(`the harness ${how}: ${r.stderr.trim()}`, r.status, r.stderr);
  }
  return r.stdout;
}

/**
 * Runs a replay script on the host kernel through the C harness and returns its output: the observation
 * lines, newline-terminated, exactly as `spf replay` prints them for the simulator.
 *
 * The script is parsed first (so a malformed line throws ReplayParseError with its line number and nothing
 * runs) and sent to the harness in canonical form.
 *
 * @throws ReplayParseError for a malformed script; HostUnavailableError when the host cannot run the
 *   harness (check {@link probeHost} first); HarnessError when the harness fails.
 */
export function runOnHost(script: string, options: RunOnHostOptions = {}): string {
  const canonical = formatScript(parseScript(script));
  return runHarness([], canonical, options.timeoutMs ?? 60_000);
}

let probed: HostProbe | undefined;

/**
 * Finds out whether conformance runs are possible here and how the host kernel behaves: Linux, a C
 * compiler, and whether a read fault maps the shared zero page (the harness reads two fresh private
 * anonymous pages and compares their PFNs). Never throws; the result is cached.
 */
export function probeHost(): HostProbe {
  if (probed !== undefined) return probed;
  probed = probeOnce();
  return probed;
}

function probeOnce(): HostProbe {
  const n = node();
  if (n === null) {
    return {
      linux: false,
      cc: false,
      zeroPage: false,
      pfnVisible: false,
      reason: 'not running under Node.js',
    };
  }
  const linux = n.os.platform() === 'linux';
  const which = n.cp.spawnSync('cc', ['--version'], { encoding: 'utf8' });
  const cc = which.error === undefined && which.status === 0;
  if (!linux || !cc) {
    const reason = !linux ? `the host is ${n.os.platform()}, not Linux` : 'no C compiler `cc` on PATH';
    return { linux, cc, zeroPage: false, pfnVisible: false, reason };
  }
  try {
    const out = runHarness(['--probe'], '', 30_000);
    const field = (k: string) => new RegExp(`^${k} (\\S+)$`, 'm').exec(out)?.[1];
    const num = (k: string) => Number(field(k) ?? Number.NaN);
    const modes = ['guess', 'always', 'never'] as const;
    const memory = {
      ramPages: num('ram-pages'),
      swapPages: num('swap-pages'),
      overcommitMode: modes[num('overcommit-memory')] ?? 'guess',
      overcommitRatio: num('overcommit-ratio'),
    };
    const dir = field('file-dir');
    const ra = field('read-ahead-kb');
    const files = {
      dir: dir ?? '',
      readAheadKb: ra === undefined || ra === 'unknown' ? null : Number(ra),
      faultAroundPages: num('fault-around-pages'),
    };
    return {
      linux,
      cc,
      zeroPage: field('zero-page') === 'yes',
      pfnVisible: field('pfn-visible') === '1',
      ...(Number.isSafeInteger(memory.ramPages) && Number.isSafeInteger(memory.swapPages) ? { memory } : {}),
      ...(dir !== undefined && Number.isSafeInteger(files.faultAroundPages)
        ? { files }
        : { filesReason: /^files-unusable (.*)$/m.exec(out)?.[1] ?? 'the harness did not report files' }),
    };
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    return { linux, cc: false, zeroPage: false, pfnVisible: false, reason };
  }
}
