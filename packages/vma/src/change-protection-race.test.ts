import { Rcu } from '@spf/locks';
import { exploreInTest, kassert, type Scenario } from '@spf/machine';
import { _PAGE_DIRTY, ACCESS_USER, Mmu, PhysicalMemory } from '@spf/pagetable';
import { describe, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { sysMprotect } from './mprotect.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { mmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;

/**
 * mprotect (change_protection) on CPU 0 against CPU 1 storing through its TLB. CPU 1 holds a writable,
 * clean translation of A, so its first store makes the MMU set Dirty in the PTE with a locked update. If
 * mprotect rewrote the PTE from a value read before that update, the Dirty bit would be lost: the store
 * happened but the page looks clean (a shared file page would never be written back; soft-dirty and reclaim are misled).
 */
function scenario(name: string): Scenario {
  return {
    name,
    cpus: 2,
    setup(m) {
      const mem = new PhysicalMemory({
        size: 16 * 1024 * 1024,
        zeroPage: false,
        lineOf: (pa) => m.physLine(pa),
      });
      const mmu = new Mmu(mem, { cpus: 2 });
      const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ mem, mmu }) });
      mmapSync(mm, {
        addr: A,
        len: P,
        prot: PROT_READ | PROT_WRITE,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      });
      touch(mm, A);
      const pt = mm.pgd;
      const leaf = pt.leaf(A);
      kassert(leaf !== null, 'no PTE for A');
      // A clean, writable PTE that CPU 1 has already read through (its TLB holds it without Dirty).
      pt.writeEntry(leaf.entryPa, leaf.entry & ~_PAGE_DIRTY);
      mmu.switchMm(0, pt);
      mmu.switchMm(1, pt);
      kassert(mmu.access(1, A, ACCESS_USER) >= 0, 'CPU 1 cannot read A');
      let stored = false;
      m.spawn(0, 'mprotect', function* () {
        yield* sysMprotect(mm, A, P, PROT_READ | PROT_WRITE | PROT_EXEC);
      });
      m.spawn(1, 'store', function* () {
        const r = yield* mmu.translateKernel(1, A, { kind: 'write', user: true });
        // A faulting store would be retried after mprotect by the fault handler; it did not store yet.
        if (!r.ok) return;
        mem.write8(Number(r.pa), 0x5a);
        stored = true;
      });
      return () => {
        if (!stored) return;
        const pte = pt.leaf(A)?.entry ?? 0n;
        kassert(
          (pte & _PAGE_DIRTY) !== 0n,
          `CPU 1 stored to A but its PTE is clean after mprotect (0x${pte.toString(16)}): the Dirty bit was lost`,
        );
      };
    },
  };
}

describe('change_protection against a CPU writing through its TLB', () => {
  it('never loses the Dirty bit the MMU sets meanwhile (explored)', () => {
    const name = 'never loses the Dirty bit the MMU sets meanwhile (explored)';
    exploreInTest(scenario(name), { policy: 'random', runs: 300, seed: 1 }, name);
    exploreInTest(scenario(name), { policy: 'pct', runs: 300, seed: 2, depth: 3 }, name);
  });
});
