import { Rcu } from '@spf/locks';
import { ExplorationFailure, exploreInTest, kassert, type Machine, read, type Scenario } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { mmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;

/**
 * Lespinasse's question 3: if page tables were freed under mm->page_table_lock, a speculative fault that
 * holds that lock would see a stable page-table tree. CPU 1 takes page_table_lock and reads the PMD entry
 * that links the arena's page table twice after re-validating the VMA; CPU 0 munmaps the arena, which
 * frees that page table.
 */
function scenario(underPtl: boolean): Scenario {
  return {
    cpus: 2,
    setup(m: Machine) {
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
      const mm = new MmStruct({
        rcu: new Rcu(m),
        pageTables: PagetableOps.factory({ mem }),
        freePgtablesUnderPtl: underPtl,
      });
      mmapSync(mm, {
        addr: A,
        len: P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      });
      touch(mm, A);
      const pt = mm.pgd;
      const pmdp = pt.lookup(A).find((s) => s.level === 2)?.entryPa as number;
      m.spawn(0, 'munmap', () => sysMunmap(mm, A, P));
      m.spawn(1, 'spf-with-ptl', function* () {
        yield* mm.rcu.readLock();
        yield* mm.pageTableLock.lock();
        // Re-validate under the lock, as SPF does: give up if the VMA is gone.
        if ((yield* mm.findVmaRcu(A)) === null) {
          yield* mm.pageTableLock.unlock();
          yield* mm.rcu.readUnlock();
          return;
        }
        const first = yield* pt.readEntryK(pmdp, 'pmd');
        // A speculative fault's work under the lock: re-validating the VMA, allocating, installing.
        for (let i = 0; i < 8; i++) yield* read(mem.lineOf(pmdp + 4096), 'work under page_table_lock');
        const second = yield* pt.readEntryK(pmdp, 'pmd');
        kassert(first === second, 'the page table was unlinked while page_table_lock was held');
        yield* mm.pageTableLock.unlock();
        yield* mm.rcu.readUnlock();
      });
    },
  };
}

describe('free_pgtables under mm->page_table_lock (freePgtablesUnderPtl)', () => {
  it('keeps page tables linked while page_table_lock is held', () => {
    const name = 'keeps page tables linked while page_table_lock is held';
    exploreInTest(scenario(true), { policy: 'random', runs: 300, seed: 2 }, name);
    exploreInTest(scenario(true), { policy: 'pct', runs: 1000, seed: 2, depth: 2 }, name);
  });

  it('without it, Linux frees page tables under the mmap lock only, and a page_table_lock holder sees them go', () => {
    let err: unknown = null;
    try {
      exploreInTest(
        scenario(false),
        { policy: 'pct', runs: 1000, seed: 2, depth: 2 },
        'without it, Linux frees page tables under the mmap lock only, and a page_table_lock holder sees them go',
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ExplorationFailure);
    expect(String(err)).toMatch(/unlinked while page_table_lock was held|use-after-free/i);
  });
});
