import type { UserContext } from '@spf/kernel';
import { O_CREAT, O_RDWR, POSIX_FADV_DONTNEED } from '@spf/kernel';
import type { Kernel } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import { MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
  WorkloadConfigError,
} from '../workload.js';

/** Options of {@link retry2010}. */
export interface Retry2010Params extends BaseParams {
  /** Pages of the file the faulting thread maps and reads every round. */
  readonly filePages: number;
  /** Rounds of the faulting thread: mmap the file, read every page, munmap, evict the file's pages. */
  readonly rounds: number;
  /** Pages of each anonymous mapping of the mmap/munmap thread (never touched). */
  readonly mmapPages: number;
  /**
   * The file system's `files.dropMmapLockForIo` (@spf/kernel's BootConfig): true is Linux's retry (a fault
   * waiting for I/O drops mmap_lock, or the VMA lock, and retries), false keeps the lock across the I/O.
   */
  readonly dropMmapLockForIo: boolean;
  /** The device's read_ahead_kb (default 128, Linux's default); 4 makes every fault read one page. */
  readonly readAheadKb?: number;
  /** The device's latency per request in ns (default 80,000: @spf/file-backed's default, an NVMe read). */
  readonly deviceLatencyNs?: number;
}

/**
 * The test of Michel Lespinasse's 2010 series "mm: retry page fault when blocking on disk transfer"
 * (VM_FAULT_RETRY for file faults, the mechanism review question 1 asks SPF to replace): one thread of a
 * process loops on mmap/munmap of anonymous memory (each call takes mmap_lock for writing) while a second
 * thread of the same process takes major faults on a file whose pages were evicted from the page cache.
 * Without the retry, every major fault holds mmap_lock for reading across the disk read, and the
 * mmap/munmap thread waits for the I/O; with it, the fault drops the lock while the read is in flight.
 *
 * Figures: the mmap/munmap thread's latency per call (mean and worst, in simulated µs), and the faulting
 * thread's faults per simulated second (the score) and major faults, over the faulting thread's window.
 */
export const retry2010: Workload<Retry2010Params> = {
  name: 'retry2010',
  models:
    "the 2010 VM_FAULT_RETRY test (Lespinasse, 'mm: retry page fault when blocking on disk transfer'): one thread loops on mmap/munmap of anonymous memory while another takes major faults on a file; mmap/munmap latency and faults/s",
  simplifies:
    'the file is evicted with posix_fadvise(POSIX_FADV_DONTNEED) after each round (the original read a file larger than memory); fixed round count instead of a timer; the mmap/munmap thread never touches its mapping; both threads pinned, one per CPU',
  run(p): WorkloadResult {
    checkInt('retry2010 cpus', p.cpus, 2, 2);
    checkInt('retry2010 filePages', p.filePages, 1, 1 << 16);
    checkInt('retry2010 rounds', p.rounds, 1, 1 << 12);
    checkInt('retry2010 mmapPages', p.mmapPages, 1, 1 << 20);
    if (typeof p.dropMmapLockForIo !== 'boolean') {
      throw new WorkloadConfigError(
        `retry2010 dropMmapLockForIo must be true (Linux's retry) or false (mmap_lock held across the I/O), got ${String(p.dropMmapLockForIo)}`,
      );
    }
    if (p.readAheadKb !== undefined) checkInt('retry2010 readAheadKb', p.readAheadKb, 4, 1 << 16);
    if (p.deviceLatencyNs !== undefined) checkInt('retry2010 deviceLatencyNs', p.deviceLatencyNs, 0, 1e9);
    const system = bootFor(p, (p.filePages * 2 + 8192) * PAGE_SIZE, {
      dropMmapLockForIo: p.dropMmapLockForIo,
      device: { readAheadKb: p.readAheadKb ?? 128, latencyNs: p.deviceLatencyNs },
    });
    const fileLen = p.filePages * PAGE_SIZE;
    const latencies: number[] = [];
    let faulterDone = false;
    let t0 = 0;
    let t1 = 0;
    let faults = 0;
    let majors = 0;

    const mmapper = function* (t: UserContext): Kernel<void> {
      const len = p.mmapPages * PAGE_SIZE;
      while (!faulterDone) {
        const a = yield* t.clock();
        const m = yield* t.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        const b = yield* t.clock();
        if (!m.ok) throw new Error(`retry2010: mmap failed with errno ${m.errno}`);
        const un = yield* t.munmap(m.value, len);
        const c = yield* t.clock();
        if (!un.ok) throw new Error(`retry2010: munmap failed with errno ${un.errno}`);
        // Only calls made while the faulting thread is measured count.
        if (t0 > 0 && !faulterDone) latencies.push(b - a, c - b);
      }
    };

    system.spawnProcess('retry2010', function* (u) {
      const fd = yield* u.open('retry2010.dat', O_RDWR | O_CREAT);
      if (!fd.ok) throw new Error(`retry2010: open failed with errno ${fd.errno}`);
      const data = new Uint8Array(fileLen);
      for (let i = 0; i < data.length; i += PAGE_SIZE) data[i] = (i / PAGE_SIZE) & 0xff;
      const w = yield* u.pwrite(fd.value, 0, data);
      if (!w.ok) throw new Error(`retry2010: pwrite failed with errno ${w.errno}`);
      const s = yield* u.fsync(fd.value);
      if (!s.ok) throw new Error(`retry2010: fsync failed with errno ${s.errno}`);
      const ev = yield* u.posixFadvise(fd.value, 0, 0, POSIX_FADV_DONTNEED);
      if (!ev.ok) throw new Error(`retry2010: posix_fadvise failed with errno ${ev.errno}`);
      yield* u.spawnThread(mmapper, 1);
      const r0 = u.rusage();
      t0 = yield* u.clock();
      for (let r = 0; r < p.rounds; r++) {
        const m = yield* u.mmap(0, fileLen, PROT_READ, MAP_SHARED, fd.value, 0);
        if (!m.ok) throw new Error(`retry2010: mmap of the file failed with errno ${m.errno}`);
        for (let pg = 0; pg < p.filePages; pg++) {
          const v = yield* u.load8(m.value + pg * PAGE_SIZE);
          if (v !== (pg & 0xff)) throw new Error(`retry2010: page ${pg} read ${v}, expected ${pg & 0xff}`);
        }
        const un = yield* u.munmap(m.value, fileLen);
        if (!un.ok) throw new Error(`retry2010: munmap of the file failed with errno ${un.errno}`);
        const e = yield* u.posixFadvise(fd.value, 0, 0, POSIX_FADV_DONTNEED);
        if (!e.ok) throw new Error(`retry2010: posix_fadvise failed with errno ${e.errno}`);
      }
      t1 = yield* u.clock();
      const r1 = u.rusage();
      faults = r1.minflt + r1.majflt - (r0.minflt + r0.majflt);
      majors = r1.majflt - r0.majflt;
      faulterDone = true;
    });
    runToEnd(system, 'retry2010');
    if (latencies.length === 0) {
      throw new Error('retry2010: the mmap/munmap thread completed no call while the faults ran');
    }
    const simNs = t1 - t0;
    let sum = 0;
    let max = 0;
    for (const l of latencies) {
      sum += l;
      max = Math.max(max, l);
    }
    return resultOf(system, faults / (simNs / 1e9), 'faults/s', simNs, {
      mmapCalls: latencies.length,
      mmapMeanUs: sum / latencies.length / 1000,
      mmapMaxUs: max / 1000,
      majorFaults: majors,
      faulterFaults: faults,
    });
  },
};
