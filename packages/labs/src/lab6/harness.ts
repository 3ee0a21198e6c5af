import { classicFaultHandler, type UserFaultPaths, withUserFaultPaths } from '@spf/fault-classic';
import type { FilemapRetryPaths } from '@spf/file-backed';
import {
  type BootConfig,
  boot,
  O_CREAT,
  O_RDWR,
  O_TRUNC,
  POSIX_FADV_DONTNEED,
  type SignalInfo,
  type System,
  type UserContext,
} from '@spf/kernel';
import { traceStudent } from '../debug-probe.js';
import { TestFailure } from '../lab-errors.js';
import type { TestContext } from '../lab.js';
import { catching as catchSignals, LAB_MEMORY } from '../lab3/kernel-harness.js';

/** The student's code at both injection points. */
export interface Lab6Paths {
  readonly user: UserFaultPaths;
  readonly filemap: FilemapRetryPaths;
}

/** The student's functions as @spf/fault-classic's `UserFaultPaths` and @spf/file-backed's `FilemapRetryPaths`. */
export function studentPaths(ctx: TestContext): Lab6Paths {
  const f = (file: string, name: string) => ctx.fn<never>(file, name);
  const user = traceStudent(
    {
      retryLoop: f('fault-retry.ts', 'doUserAddrFaultRetry') as UserFaultPaths['retryLoop'],
      mmAccountFault: f('fault-retry.ts', 'mmAccountFault') as UserFaultPaths['mmAccountFault'],
    },
    ['retryLoop'],
  );
  const filemap = traceStudent(
    {
      maybeUnlockMmapForIo: f(
        'filemap-retry.ts',
        'maybeUnlockMmapForIo',
      ) as FilemapRetryPaths['maybeUnlockMmapForIo'],
      lockFolioMaybeDropMmap: f(
        'filemap-retry.ts',
        'lockFolioMaybeDropMmap',
      ) as FilemapRetryPaths['lockFolioMaybeDropMmap'],
      outRetry: f('filemap-retry.ts', 'outRetry') as FilemapRetryPaths['outRetry'],
    },
    ['maybeUnlockMmapForIo', 'lockFolioMaybeDropMmap', 'outRetry'],
  );
  return { user, filemap };
}

/** The disk latency of the tests that time mmap_lock: a slow disk, 1 ms per request. */
export const SLOW_DISK_NS = 1_000_000;

/**
 * How long an mmap or munmap may wait for mmap_lock while another thread's fault waits for the slow disk:
 * a tenth of the disk's latency. A fault that keeps mmap_lock across the read makes it wait for nearly the
 * whole latency; one that drops it, a few microseconds (the time to finish whatever attempt holds it).
 */
export const WAIT_THRESHOLD_NS = SLOW_DISK_NS / 10;

/** Boots @spf/kernel with the student's retry loop, fault accounting and filemap pieces. */
export function bootLab6(
  paths: Lab6Paths,
  config: BootConfig & { readonly latencyNs?: number } = {},
): System {
  const { latencyNs, ...rest } = config;
  return boot({
    memory: LAB_MEMORY,
    cpus: 2,
    ...rest,
    faultHandler: withUserFaultPaths(classicFaultHandler, paths.user),
    files: { device: { latencyNs: latencyNs ?? 80_000 }, retryPaths: paths.filemap },
  });
}

/** The byte at offset `off` of page `i` of the test files. Never 0, so a zero page cannot pass for it. */
export function fileByte(i: number, off: number): number {
  return ((i * 31 + off * 7) % 255) + 1;
}

/**
 * Creates `/mnt/<name>` with `pages` pages of {@link fileByte}, then writes it back (fsync) and drops it from
 * the page cache (posix_fadvise DONTNEED): the next access to any page reads the disk. Returns the open fd.
 */
export function* preparedFile(
  u: UserContext,
  name: string,
  pages: number,
): Generator<unknown, number, unknown> {
  const fd = yield* u.open(name, O_RDWR | O_CREAT | O_TRUNC);
  if (!fd.ok) throw new TestFailure(`open failed with errno ${fd.errno}`);
  const data = new Uint8Array(pages * 4096);
  for (let i = 0; i < pages; i++)
    for (let off = 0; off < 4096; off++) data[i * 4096 + off] = fileByte(i, off);
  const w = yield* u.pwrite(fd.value, 0, data);
  if (!w.ok) throw new TestFailure(`pwrite failed with errno ${w.errno}`);
  const s = yield* u.fsync(fd.value); // DONTNEED drops clean pages only
  if (!s.ok) throw new TestFailure(`fsync failed with errno ${s.errno}`);
  const e = yield* u.posixFadvise(fd.value, 0, 0, POSIX_FADV_DONTNEED);
  if (!e.ok) throw new TestFailure(`posix_fadvise failed with errno ${e.errno}`);
  return fd.value;
}

/** Runs `body`, returning the signal it was stopped by (SIGSEGV or SIGBUS), or null. */
export function* catching(
  u: UserContext,
  body: () => Generator<unknown, void, unknown>,
): Generator<unknown, SignalInfo | null, unknown> {
  return yield* catchSignals(u, body, ['SIGSEGV', 'SIGBUS']);
}

/** Spins (sched_yield) until the disk has a request in flight: another thread's fault is waiting for it. */
export function* untilDiskBusy(u: UserContext): Generator<unknown, void, unknown> {
  while (u.system.fs.device.inflight === 0) yield* u.schedYield();
}
