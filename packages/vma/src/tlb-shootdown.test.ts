import { Rcu } from '@spf/locks';
import { cpuRelax, exploreInTest, Machine, type Scenario } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { sysMadvise } from './madvise.js';
import { sysMprotect } from './mprotect.js';
import { sysMremap } from './mremap.js';
import { mmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;

type Op = 'munmap' | 'mprotect' | 'mprotect-same' | 'mremap' | 'madvise';

function setup(op: Op, freeUnderPtl = false, shootdown = true, touched = true) {
  const m = new Machine({ cpus: 2, trace: true });
  const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
  const mmu = new Mmu(mem, { cpus: 2 });
  const mm = new MmStruct({
    rcu: new Rcu(m),
    pageTables: PagetableOps.factory(shootdown ? { mem, mmu } : { mem }),
    freePgtablesUnderPtl: freeUnderPtl,
  });
  mmapSync(mm, {
    addr: A,
    len: 2 * P,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  const pt = mm.pgd;
  mmu.switchMm(0, pt);
  mmu.switchMm(1, pt);
  if (touched) {
    touch(mm, A, 2 * P);
    // CPU 1 caches a writable translation of A.
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
  }
  m.spawn(0, op, function* () {
    if (op === 'munmap') yield* sysMunmap(mm, A, 2 * P);
    else if (op === 'mprotect') yield* sysMprotect(mm, A, 2 * P, PROT_READ);
    else if (op === 'mprotect-same') yield* sysMprotect(mm, A, 2 * P, PROT_READ | PROT_WRITE);
    else if (op === 'mremap')
      yield* sysMremap(mm, A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 64 * P);
    else yield* sysMadvise(mm, A, 2 * P, MADV_DONTNEED);
  });
  return { m, mm, mmu, mem };
}

/** How many TLB-shootdown IPIs a run sent. */
function shootdowns(res: { trace: readonly { kind: string; label: string }[] | null }): number {
  return (res.trace ?? []).filter((e) => e.kind === 'ipi' && e.label.startsWith('flush_tlb_mm_range ->'))
    .length;
}

describe('TLB shootdown', () => {
  it('munmap invalidates the stale translation in every CPU of mm_cpumask and only then frees the page', () => {
    for (const underPtl of [false, true]) {
      const { m, mm, mmu } = setup('munmap', underPtl);
      const res = m.run();
      expect(res.failure).toBeNull();
      // The translation is gone from CPU 1's TLB: the access faults instead of reaching the freed frame.
      expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBe(-1);
      expect(mmu.fault.kind).toBe('PF');
      checkMmInvariants([mm]);
    }
  });

  it('without the shootdown the other CPU keeps using the stale translation (the control)', () => {
    const { m, mmu } = setup('mprotect', false, false);
    expect(m.run().failure).toBeNull();
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
  });

  it('mprotect to read-only removes the writable translation from the other CPU', () => {
    const { m, mm, mmu } = setup('mprotect');
    expect(m.run().failure).toBeNull();
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBe(-1);
    expect(mmu.access(1, A, ACCESS_USER)).toBeGreaterThan(0);
    checkMmInvariants([mm]);
  });

  it('an operation that removed or changed no cached translation sends no IPI (tlb_flush_mmu_tlbonly)', () => {
    for (const op of ['munmap', 'mprotect', 'mremap', 'madvise'] as const) {
      const { m, mm } = setup(op, false, true, false);
      const res = m.run();
      expect(res.failure).toBeNull();
      expect(shootdowns(res), `${op} of an untouched range`).toBe(0);
      checkMmInvariants([mm]);
    }
    // The same operations over pages CPU 1 has cached shoot its TLB down once.
    for (const op of ['munmap', 'mprotect', 'mremap', 'madvise'] as const) {
      const { m, mm, mmu } = setup(op);
      const res = m.run();
      expect(res.failure).toBeNull();
      expect(shootdowns(res), `${op} of a touched range`).toBeGreaterThan(0);
      if (op !== 'mprotect') expect(mmu.access(1, A, ACCESS_USER)).toBe(-1);
      checkMmInvariants([mm]);
    }
  });

  it('mprotect to the protection the pages already have sends no IPI', () => {
    // mprotect_fixup() returns early when the flags do not change: no PTE is rewritten, nothing to flush.
    const { m, mmu } = setup('mprotect-same');
    const res = m.run();
    expect(res.failure).toBeNull();
    expect(shootdowns(res)).toBe(0);
    expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
  });

  it('concurrent unmappers under the read lock keep their own gathers: one flush never frees the other’s pages (explored)', () => {
    // madvise(MADV_DONTNEED) of page 0 on CPU 0 and a ptep_clear_flush()-style single-page flush of page 1
    // on CPU 1 both run under mmap_lock held for reading; CPU 2 keeps reading page 0 through its TLB. If the
    // page-1 flush freed the pages the madvise had gathered (or cancelled its shootdown), CPU 2 would read
    // a freed frame through its stale translation.
    const name =
      'concurrent unmappers under the read lock keep their own gathers: one flush never frees the other’s pages (explored)';
    const scenario: Scenario = {
      name,
      cpus: 3,
      setup(m) {
        const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
        const mmu = new Mmu(mem, { cpus: 3 });
        const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ mem, mmu }) });
        mmapSync(mm, {
          addr: A,
          len: 2 * P,
          prot: PROT_READ | PROT_WRITE,
          flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
        });
        touch(mm, A, 2 * P);
        const pt = mm.pgd;
        for (const cpu of [0, 1, 2]) mmu.switchMm(cpu, pt);
        expect(mmu.access(2, A, ACCESS_USER)).toBeGreaterThan(0);
        let running = 2;
        m.spawn(0, 'madvise', function* () {
          yield* sysMadvise(mm, A, P, MADV_DONTNEED);
          running--;
        });
        m.spawn(1, 'cow-flush', function* () {
          yield* mm.mmapReadLock();
          yield* mm.pageTables.flushTlbPage(A + P);
          yield* mm.mmapReadUnlock();
          running--;
        });
        m.spawn(2, 'reader', function* () {
          while (running > 0) {
            const pa = mmu.access(2, A, ACCESS_USER);
            if (pa >= 0) mem.read8(pa); // a freed frame is poisoned: UseAfterFreeError
            yield* cpuRelax();
          }
        });
        return () => checkMmInvariants([mm]);
      },
    };
    exploreInTest(scenario, { policy: 'random', runs: 200, seed: 11 }, name);
    exploreInTest(scenario, { policy: 'pct', runs: 200, seed: 12, depth: 3 }, name);
  });
});
