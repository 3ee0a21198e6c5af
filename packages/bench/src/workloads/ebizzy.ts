import { type Kernel, Prng } from '@spf/machine';
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

/** Options of {@link ebizzy}. */
export interface EbizzyParams extends BaseParams {
  /** Shared chunks the threads search (`-n`, default 10 in ebizzy). */
  readonly chunks: number;
  /** Pages per chunk (`-s` in bytes, 512 KiB = 128 pages in ebizzy). */
  readonly chunkPages: number;
  /** Records each thread searches (ebizzy runs for `-S` seconds instead). */
  readonly records: number;
}

/**
 * ebizzy (Valerie Henson, 2006) as `ebizzy -mTt N`: N threads search records in shared chunks of memory.
 * For every record `search_mem()` picks a random chunk, allocates a copy buffer of the chunk's size with
 * mmap (`-m`), copies the chunk into it touching every page (`-T`: each page of the fresh buffer is a
 * first-touch fault), runs a bsearch in the copy and frees the buffer with munmap. The figure is records
 * per second. Each copy is an mmap (mmap_lock for writing), a run of faults and a munmap (writer again, and
 * a TLB shootdown): the mix the SPF series quoted its largest gains on.
 */
export const ebizzy: Workload<EbizzyParams> = {
  name: 'ebizzy',
  models:
    'ebizzy -mTt N: per record, mmap a copy buffer, copy a random shared chunk into it (touching every page), bsearch, munmap; records/s',
  simplifies:
    'the copy reads one byte per source page and writes one byte per destination page (memcpy of 4 KiB per page is not charged beyond the page faults and cache-line accesses); the bsearch is a few loads; a fixed record count per thread instead of a -S seconds timer; threads pinned one per CPU; each thread draws its chunks from its own PRNG seeded from the machine seed and its index',
  run(p): WorkloadResult {
    checkInt('ebizzy chunks', p.chunks, 1, 4096);
    checkInt('ebizzy chunkPages', p.chunkPages, 1, 1 << 16);
    checkInt('ebizzy records', p.records, 1, 1 << 20);
    const n = p.cpus;
    const system = bootFor(p, ((p.chunks + 2 * n) * (p.chunkPages + 8) + 8192) * PAGE_SIZE);
    const len = p.chunkPages * PAGE_SIZE;
    const chunkBase: number[] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    const thread = (i: number) =>
      function* (u: UserContext): Kernel<void> {
        const rng = new Prng((p.seed * 7919 + i * 104729 + 1) >>> 0);
        first = Math.min(first, yield* u.clock());
        for (let r = 0; r < p.records; r++) {
          const src = chunkBase[rng.nextU32() % p.chunks];
          const copy = yield* u.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
          if (!copy.ok) throw new Error(`ebizzy: mmap failed with errno ${copy.errno}`);
          for (let k = 0; k < p.chunkPages; k++) {
            const v = yield* u.load8(src + k * PAGE_SIZE);
            yield* u.store8(copy.value + k * PAGE_SIZE, v);
          }
          // bsearch over the copy: log2(records in the chunk) probes.
          let lo = 0;
          let hi = p.chunkPages - 1;
          while (lo < hi) {
            const mid = (lo + hi) >>> 1;
            yield* u.load8(copy.value + mid * PAGE_SIZE);
            if (rng.nextU32() & 1) lo = mid + 1;
            else hi = mid;
          }
          const un = yield* u.munmap(copy.value, len);
          if (!un.ok) throw new Error(`ebizzy: munmap failed with errno ${un.errno}`);
        }
        last = Math.max(last, yield* u.clock());
      };
    system.spawnProcess('ebizzy', function* (u) {
      // Chunk set-up (not measured): allocate and fill every chunk, as ebizzy does before starting threads.
      for (let c = 0; c < p.chunks; c++) {
        const m = yield* u.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        if (!m.ok) throw new Error(`ebizzy: chunk mmap failed with errno ${m.errno}`);
        chunkBase.push(m.value);
        for (let k = 0; k < p.chunkPages; k++) yield* u.store8(m.value + k * PAGE_SIZE, (c + k) & 0xff);
      }
      for (let i = 1; i < n; i++) yield* u.spawnThread(thread(i), i);
      yield* thread(0)(u);
    });
    runToEnd(system, 'ebizzy');
    const simNs = last - first;
    return resultOf(system, (n * p.records) / (simNs / 1e9), 'records/s', simNs);
  },
};
