import { File, POSIX_FADV_DONTNEED } from '@spf/file-backed';
import type { Kernel } from '@spf/machine';
import {
  errnoName,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  type SysResult,
  VM_EXEC,
  VM_MAYSHARE,
  VM_READ,
  VM_WRITE,
} from '@spf/vma';
import type { FaultHandlerFactory } from '@spf/fault-classic';
import { O_CREAT, O_EXCL, O_RDWR } from './file-syscalls.js';
import { pageStateAt } from './pagemap.js';
import {
  ARENA_BASE,
  ARENA_PAGES,
  arenaAddress,
  fileByte,
  type ParsedOp,
  type Prot,
  REPLAY_PAGE_SIZE,
  TOUCH_STORE_VALUE,
  WRITE_STORE_VALUE,
} from './replay/format.js';
import {
  type ErrnoName,
  formatObservations,
  type MapsEntry,
  type Observation,
  type PageState,
} from './replay/observation.js';
import { parseScript } from './replay/parse.js';
import { UserSignal } from './signals.js';
import { type BootConfig, boot, type SystemRunResult } from './system.js';
import type { UserContext } from './user-context.js';

/** Options of {@link runReplay}. */
export interface RunReplayOptions {
  /** Map the shared zero page on read faults (default true; the Linux 6.18 development VM maps none). */
  readonly zeroPage?: boolean;
  /** The fault handler (default classic). */
  readonly faultHandler?: FaultHandlerFactory;
  /** Record a machine trace. */
  readonly trace?: boolean;
  /** RAM of the simulated machine in bytes (`BootConfig.memory`; default 256 MiB). */
  readonly memory?: number;
  /** Overcommit accounting (`BootConfig.overcommit`); with `memory`, match the host's (`probeHost().memory`). */
  readonly overcommit?: BootConfig['overcommit'];
  /**
   * What the file ops depend on, to match a host (`probeHost().files`): the disk's `read_ahead_kb`
   * (default 128, Linux's default) and the pages one read fault maps by fault-around (default 16:
   * fault_around_bytes 64 KiB).
   */
  readonly files?: { readonly readAheadKb?: number; readonly faultAroundPages?: number };
}

/** The outcome of a replay run. */
export interface ReplayRun {
  /** The observations, one per op. */
  readonly observations: readonly Observation[];
  /** The printed output (`formatObservations`), exactly what `spf replay` prints. */
  readonly output: string;
  /** The simulator's run result (for traces and invariant failures). */
  readonly result: SystemRunResult;
}

/** Thrown when the simulator itself failed while running a replay script (a kernel bug, not bad input). */
export class ReplaySimulatorError extends Error {
  override readonly name = 'ReplaySimulatorError';
}

function protBits(p: Prot): number {
  return (p.read ? PROT_READ : 0) | (p.write ? PROT_WRITE : 0) | (p.exec ? PROT_EXEC : 0);
}

function errno(r: SysResult<unknown>): ErrnoName | null {
  return r.ok ? null : (errnoName(r.errno) as ErrnoName);
}

const ARENA_END = ARENA_BASE + ARENA_PAGES * REPLAY_PAGE_SIZE;

/** The script's files: the fd of each file id the script created (as the harness keeps them open). */
type ScriptFiles = Map<number, number>;

/** The fd of a file id, or -1 (which every file syscall answers with EBADF, as on the host). */
function fdOf(files: ScriptFiles, id: number): number {
  return files.get(id) ?? -1;
}

/** The contents of page `p` of file `id` as `file` writes them. */
function filePage(id: number, p: number): Uint8Array {
  const data = new Uint8Array(REPLAY_PAGE_SIZE);
  for (let b = 0; b < REPLAY_PAGE_SIZE; b++) data[b] = fileByte(id, p, b);
  return data;
}

/** The script's file id of the file a VMA maps, if it is one of the script's files. */
function scriptFileId(u: UserContext, files: ScriptFiles, vmFile: unknown): number | undefined {
  if (!(vmFile instanceof File)) return undefined;
  for (const [id, fd] of files) {
    const f = u.process.files.get(fd);
    if (f !== null && f.inode === vmFile.inode) return id;
  }
  return undefined;
}

/** A failed syscall in the middle of an op that the harness treats as a broken host (exit status 3). */
function mustSucceed<T>(what: string, r: SysResult<T>): T {
  if (!r.ok) throw new ReplaySimulatorError(`${what} failed with ${errnoName(r.errno)}`);
  return r.value;
}

function* runOp(u: UserContext, op: ParsedOp, files: ScriptFiles): Kernel<Observation> {
  const pages = (n: number) => n * REPLAY_PAGE_SIZE;
  switch (op.kind) {
    case 'mmap': {
      const anon = op.source.kind === 'anon';
      const flags =
        (op.share === 'shared' ? MAP_SHARED : MAP_PRIVATE) |
        (anon ? MAP_ANONYMOUS : 0) |
        (op.fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE);
      const fd = op.source.kind === 'file' ? fdOf(files, op.source.id) : -1;
      const offset = op.source.kind === 'file' ? pages(op.source.pgoff) : 0;
      const r = yield* u.mmap(arenaAddress(op.off), pages(op.npages), protBits(op.prot), flags, fd, offset);
      return { op: 'mmap', errno: errno(r) };
    }
    case 'file': {
      const r = yield* u.open(`f${op.id}`, O_RDWR | O_CREAT | O_EXCL);
      if (!r.ok) return { op: 'file', id: op.id, errno: errno(r) };
      for (let p = 0; p < op.npages; p++) {
        mustSucceed(
          `line ${op.line}: writing page ${p}`,
          yield* u.pwrite(r.value, pages(p), filePage(op.id, p)),
        );
      }
      mustSucceed(`line ${op.line}: fsync`, yield* u.fsync(r.value));
      files.set(op.id, r.value);
      return { op: 'file', id: op.id, errno: null };
    }
    case 'evict': {
      const fd = fdOf(files, op.id);
      let r: SysResult<0> = yield* u.fsync(fd);
      if (r.ok) r = yield* u.posixFadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      return { op: 'evict', id: op.id, errno: errno(r) };
    }
    case 'truncate': {
      const r = yield* u.ftruncate(fdOf(files, op.id), pages(op.npages));
      return { op: 'truncate', id: op.id, errno: errno(r) };
    }
    case 'read': {
      const r = yield* u.pread(fdOf(files, op.id), pages(op.page), 1);
      const result = !r.ok
        ? { errno: errnoName(r.errno) as ErrnoName }
        : r.value.length === 0
          ? ('eof' as const)
          : { value: r.value[0] };
      return { op: 'read', id: op.id, page: op.page, result };
    }
    case 'write': {
      const r = yield* u.pwrite(fdOf(files, op.id), pages(op.page), Uint8Array.of(WRITE_STORE_VALUE));
      return { op: 'write', id: op.id, page: op.page, errno: errno(r) };
    }
    case 'munmap':
      return { op: 'munmap', errno: errno(yield* u.munmap(arenaAddress(op.off), pages(op.npages))) };
    case 'mprotect': {
      const r = yield* u.mprotect(arenaAddress(op.off), pages(op.npages), protBits(op.prot));
      return { op: 'mprotect', errno: errno(r) };
    }
    case 'touch': {
      const before = u.rusage();
      const addr = arenaAddress(op.page);
      try {
        let value: number | undefined;
        if (op.access === 'r') value = yield* u.load8(addr);
        else yield* u.store8(addr, TOUCH_STORE_VALUE);
        const after = u.rusage();
        return {
          op: 'touch',
          result: 'ok',
          minflt: after.minflt - before.minflt,
          majflt: after.majflt - before.majflt,
          ...(value === undefined ? {} : { value }),
        };
      } catch (e) {
        if (!(e instanceof UserSignal)) throw e;
        const { signal, code } = e.info;
        if (signal === 'SIGBUS') return { op: 'touch', result: 'SIGBUS' };
        if (signal === 'SIGSEGV' && (code === 'MAPERR' || code === 'ACCERR' || code === 'PKUERR')) {
          return { op: 'touch', result: 'SIGSEGV', code };
        }
        throw e;
      }
    }
    case 'maps': {
      const vmas: MapsEntry[] = [];
      for (const v of u.process.mm.vmasIn(ARENA_BASE, ARENA_END)) {
        const f = v.vmFlags;
        vmas.push({
          start: (Math.max(v.vmStart, ARENA_BASE) - ARENA_BASE) / REPLAY_PAGE_SIZE,
          end: (Math.min(v.vmEnd, ARENA_END) - ARENA_BASE) / REPLAY_PAGE_SIZE,
          prot: { read: (f & VM_READ) !== 0, write: (f & VM_WRITE) !== 0, exec: (f & VM_EXEC) !== 0 },
          shared: (f & VM_MAYSHARE) !== 0,
          // show_map_vma() prints vm_pgoff only for VMAs with a file (shmem for shared anonymous memory).
          pgoff: v.vmFile !== null ? v.vmPgoff : 0,
          ...fileField(scriptFileId(u, files, v.vmFile)),
        });
      }
      return { op: 'maps', vmas };
    }
    case 'pagemap': {
      const states: PageState[] = [];
      for (let i = 0; i < op.npages; i++)
        states.push(pageStateAt(u.system, u.process, arenaAddress(op.off + i)));
      return { op: 'pagemap', pages: states };
    }
  }
}

function fileField(id: number | undefined): { file?: number } {
  return id === undefined ? {} : { file: id };
}

/**
 * Runs a replay script on a freshly booted one-CPU simulator and returns the observations and the output
 * `spf replay` prints. The script is parsed completely first: a malformed line throws `ReplayParseError`
 * (naming the line and what was expected) and nothing runs. Like the host harness, the program catches
 * SIGSEGV and SIGBUS, so a faulting touch prints the signal and the script goes on.
 *
 * Keeps every observation and the whole output in memory; {@link streamReplay} hands each one over as it
 * is made instead (what `spf replay` uses, so a long script's output is never held whole).
 *
 * @throws ReplaySimulatorError if the simulator failed (a kernel bug or a broken invariant).
 */
export function runReplay(script: string, opts: RunReplayOptions = {}): ReplayRun {
  const observations: Observation[] = [];
  const result = streamReplay(script, (o) => observations.push(o), opts);
  return { observations, output: formatObservations(observations), result };
}

/**
 * {@link runReplay} without keeping the observations: parses the whole script first (a malformed line
 * throws `ReplayParseError` and nothing runs), then calls `emit` with each observation as its op completes.
 * If the simulator fails, the observations of the ops before the failure have been emitted already.
 *
 * @throws ReplaySimulatorError if the simulator failed (a kernel bug or a broken invariant).
 */
export function streamReplay(
  script: string,
  emit: (observation: Observation) => void,
  opts: RunReplayOptions = {},
): SystemRunResult {
  const ops = parseScript(script);
  const system = boot({
    cpus: 1,
    zeroPage: opts.zeroPage ?? true,
    faultHandler: opts.faultHandler,
    trace: opts.trace,
    memory: opts.memory,
    overcommit: opts.overcommit,
    files: {
      device: { readAheadKb: opts.files?.readAheadKb ?? 128 },
      faultAroundBytes: (opts.files?.faultAroundPages ?? 16) * REPLAY_PAGE_SIZE,
    },
  });
  const files: ScriptFiles = new Map();
  let done = 0;
  system.spawnProcess('replay', function* (u) {
    u.catchSignal('SIGSEGV');
    u.catchSignal('SIGBUS');
    for (const op of ops) {
      emit(yield* runOp(u, op, files));
      // The host harness waits for its disk to go idle after each op (settle_io()): from the script's
      // view every op is synchronous, I/O it started included (readahead, writeback).
      yield* system.fs.device.waitIdle();
      done++;
    }
  });
  const result = system.run();
  if (!result.ok) {
    const f = result.failure;
    throw new ReplaySimulatorError(
      `the simulator failed after ${done} of ${ops.length} ops: ${f?.kind}: ${f?.message}`,
    );
  }
  return result;
}
