import { exploreInTest, type Scenario } from '@spf/machine';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from './system.js';

const A = 0x4000_0000;
const PAGES = 6;
const LEN = PAGES * 4096;

/**
 * One thread maps memory with `flags` (populating it) while another thread of the process unmaps the same
 * range a few times. Whatever the interleaving, once the process has exited every frame allocated since boot
 * must be free again: the system's end-of-run invariant check reports a leak otherwise.
 */
function populateVsMunmap(name: string, flags: number): Scenario {
  return {
    name,
    cpus: 2,
    setup(m) {
      const sys = boot({ machine: m });
      sys.spawnProcess('populate', function* (u) {
        yield* u.spawnThread(function* (t) {
          for (let i = 0; i < 4; i++) {
            yield* t.munmap(A, LEN);
            yield* t.schedYield();
          }
        }, 1);
        const r = yield* u.mmap(A, LEN, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS | MAP_FIXED);
        expect(r.ok).toBe(true);
      });
      return () => {
        expect(sys.invariantProblems()).toEqual([]);
      };
    },
  };
}

describe('shared anonymous memory owns its pages (the last fput frees them)', () => {
  for (const [label, flags] of [
    ['MAP_SHARED | MAP_POPULATE', MAP_SHARED | MAP_POPULATE],
    ['MAP_SHARED | MAP_LOCKED', MAP_SHARED | MAP_LOCKED],
    ['MAP_PRIVATE | MAP_POPULATE (control)', MAP_PRIVATE | MAP_POPULATE],
  ] as const) {
    it(`${label} racing with munmap by another thread leaks no frame (explored)`, () => {
      const name = `${label} racing with munmap by another thread leaks no frame (explored)`;
      exploreInTest(populateVsMunmap(name, flags), { policy: 'random', runs: 60, seed: 3 }, name);
      exploreInTest(populateVsMunmap(name, flags), { policy: 'pct', runs: 60, seed: 4, depth: 3 }, name);
    });
  }

  it('munmap of the last mapping frees the shmem pages at once; a partial munmap keeps them', () => {
    // The shmem file is released at remove_vma() (Linux), so its pages go with the munmap itself.
    const sys = boot({ vmFileRelease: 'removeVma' });
    const free: number[] = [];
    sys.spawnProcess('shm', function* (u) {
      yield* u.mmap(A, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
      for (let i = 0; i < PAGES; i++) yield* u.store8(A + i * 4096, i + 1);
      free.push(sys.mem.freeCount);
      yield* u.munmap(A, 4096); // the file keeps its pages: the rest of the mapping still uses it
      free.push(sys.mem.freeCount);
      expect(yield* u.load8(A + 4096)).toBe(2);
      yield* u.munmap(A + 4096, LEN - 4096); // the last reference: shmem_evict_inode()
      free.push(sys.mem.freeCount);
    });
    expect(sys.run().ok).toBe(true);
    expect(free[1]).toBe(free[0]);
    expect(free[2]).toBeGreaterThanOrEqual(free[1] + PAGES);
  });
});
