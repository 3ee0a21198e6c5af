import { Rcu } from '@spf/locks';
import { Machine } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { sysMprotect } from './mprotect.js';
import { mmapSync } from './sync-api.js';
import { touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;

function setup(op: 'munmap' | 'mprotect', freeUnderPtl = false, shootdown = true) {
  const m = new Machine({ cpus: 2 });
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
  touch(mm, A, 2 * P);
  const pt = (mm.pageTables as PagetableOps).pt;
  mmu.switchMm(0, pt);
  mmu.switchMm(1, pt);
  // CPU 1 caches a writable translation of A.
  expect(mmu.access(1, A, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
  m.spawn(0, op, function* () {
    if (op === 'munmap') yield* sysMunmap(mm, A, 2 * P);
    else yield* sysMprotect(mm, A, 2 * P, PROT_READ);
  });
  return { m, mm, mmu, mem };
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
});
