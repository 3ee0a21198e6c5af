import { delay, type Kernel, read } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import type { UserContext } from '@spf/kernel';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import {
  type BaseParams,
  bootFor,
  checkInt,
  resultOf,
  runToEnd,
  type Workload,
  type WorkloadResult,
} from '../workload.js';

/** Options of {@link gupReader}. */
export interface GupReaderParams extends BaseParams {
  /** VMAs the reader walks under one hold of mmap_lock (separate one-page mappings). */
  readonly vmas: number;
  /** Simulated nanoseconds the reader spends per VMA (following its pages, as get_user_pages does). */
  readonly nsPerVma: number;
  /** Walks the reader makes. */
  readonly walks: number;
  /** Thread-stack mmap + munmap pairs the writer makes meanwhile. */
  readonly writerOps: number;
}

/**
 * A get_user_pages()-like reader (the case question 6 names): a thread that takes mmap_lock for reading
 * and walks every VMA of the mm (as `/proc/pid/maps`, `get_user_pages()` over a long range or
 * `process_vm_readv()` do) while another thread creates and destroys thread stacks elsewhere in the
 * address space (each an mmap and a munmap: mmap_lock for writing). The writer's operations are delayed
 * for as long as a walk holds the lock, although they touch a range the walk never looks at: what a range
 * lock taken over partial ranges would avoid, and a lock over the whole space (our `mmapLock: 'range'`)
 * does not. Figures: the writer's mean and worst mmap+munmap latency (score: mean, µs) and the walks done.
 */
export const gupReader: Workload<GupReaderParams> = {
  name: 'gup_reader',
  models:
    'a get_user_pages()-style reader holding mmap_lock for reading across a walk of every VMA, against a thread creating stacks',
  simplifies:
    "the walk charges a fixed `nsPerVma` per VMA (the VMA lookup is the tree's own find_vma(); no pages are pinned); the writer is one thread; CPU 0 runs the reader, CPU 1 the writer",
  run(p): WorkloadResult {
    checkInt('gup_reader vmas', p.vmas, 1, 1 << 16);
    checkInt('gup_reader nsPerVma', p.nsPerVma, 0, 1e9);
    checkInt('gup_reader walks', p.walks, 1, 1 << 20);
    checkInt('gup_reader writerOps', p.writerOps, 1, 1 << 20);
    if (p.cpus < 2) throw new RangeError('gup_reader needs at least 2 CPUs (reader and writer)');
    const system = bootFor(p, (p.vmas * 2 + 8192) * PAGE_SIZE);
    const lat: number[] = [];
    let readerDone = false;
    let start = 0;
    let end = 0;
    let walksDone = 0;
    system.spawnProcess('gup', function* (u) {
      const base: number[] = [];
      for (let v = 0; v < p.vmas; v++) {
        // Alternate protections so neighbouring mappings do not merge into one VMA.
        const prot = v % 2 === 0 ? PROT_READ | PROT_WRITE : PROT_READ;
        const m = yield* u.mmap(0, PAGE_SIZE, prot, MAP_PRIVATE | MAP_ANONYMOUS);
        if (!m.ok) throw new Error(`gup_reader: mmap failed with errno ${m.errno}`);
        base.push(m.value);
      }
      start = yield* u.clock();
      yield* u.spawnThread(function* (w: UserContext): Kernel<void> {
        for (let i = 0; i < p.writerOps; i++) {
          const t0 = yield* w.clock();
          const s = yield* w.mmap(0, 16 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
          if (!s.ok) throw new Error(`gup_reader: writer mmap failed with errno ${s.errno}`);
          const r = yield* w.munmap(s.value, 16 * PAGE_SIZE);
          if (!r.ok) throw new Error(`gup_reader: writer munmap failed with errno ${r.errno}`);
          lat.push((yield* w.clock()) - t0);
        }
        end = Math.max(end, yield* w.clock());
      }, 1);
      const mm = u.process.mm;
      for (let k = 0; k < p.walks && !readerDone; k++) {
        yield* mm.mmapLock.downRead();
        let addr = 0;
        for (let vma = mm.findVma(addr); vma !== null; vma = mm.findVma(addr)) {
          yield* read(vma.line, 'gup: read the VMA');
          if (p.nsPerVma > 0) yield* delay(p.nsPerVma, 'gup: follow the VMA');
          addr = vma.vmEnd;
        }
        yield* mm.mmapLock.upRead();
        walksDone++;
      }
      readerDone = true;
      end = Math.max(end, yield* u.clock());
    });
    runToEnd(system, 'gup_reader');
    const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
    return resultOf(system, mean / 1e3, 'µs per writer op', end - start, {
      writerMaxUs: Math.max(...lat) / 1e3,
      walks: walksDone,
    });
  },
};
