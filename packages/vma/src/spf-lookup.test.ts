import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { speculativeVmaLookup, speculativeVmaValidate, type VmaSnapshot } from './spf-lookup.js';
import { mmapSync, mprotectSync } from './sync-api.js';
import { type VmArea, vmWriteBegin, vmWriteEnd } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;

function setup() {
  const mm = new MmStruct();
  const r = mmapSync(mm, {
    addr: A,
    len: 4 * P,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
  });
  expect(r).toEqual({ ok: true, value: A });
  return { mm, vma: mm.findVma(A) as VmArea };
}
/** speculativeVmaLookup inside rcu_read_lock. */
const lookup = (mm: MmStruct, addr: number) =>
  runSync(
    (function* () {
      yield* mm.rcu.readLock();
      try {
        return yield* speculativeVmaLookup(mm, addr);
      } finally {
        yield* mm.rcu.readUnlock();
      }
    })(),
  );
const validate = (snap: VmaSnapshot) => runSync(speculativeVmaValidate(snap));

describe('the speculative VMA lookup', () => {
  it('copies the fields a fault needs, with the vm_sequence value that validates them', () => {
    const { mm, vma } = setup();
    for (const addr of [A, A + 3 * P + P - 1]) {
      const snap = lookup(mm, addr);
      expect(snap).toEqual({
        vma,
        seq: runSync(vma.vmSequence.rawReadSeqcount()),
        vmStart: A,
        vmEnd: A + 4 * P,
        vmFlags: vma.vmFlags,
        vmPgoff: A / P,
        vmPageProt: vma.vmPageProt,
      });
      expect(validate(snap as VmaSnapshot)).toBe(true);
    }
  });

  it('finds nothing outside every VMA', () => {
    const { mm } = setup();
    expect(lookup(mm, A - 1)).toBeNull();
    expect(lookup(mm, A + 4 * P)).toBeNull();
    expect(lookup(mm, 0)).toBeNull();
  });

  it('gives up while a writer is inside vm_write_begin/vm_write_end', () => {
    const { mm, vma } = setup();
    runSync(vmWriteBegin(vma));
    expect(lookup(mm, A)).toBeNull();
    runSync(vmWriteEnd(vma));
    expect(lookup(mm, A)).not.toBeNull();
  });

  it('gives up on a detached VMA', () => {
    const { mm, vma } = setup();
    vma.detached = true;
    expect(lookup(mm, A)).toBeNull();
  });

  it('reports a freed VMA as a use-after-free', () => {
    const { mm, vma } = setup();
    vma.poisoned = 'freed by a test';
    expect(() => lookup(mm, A)).toThrow(`speculative fault accessed freed vma#${vma.id} (freed by a test)`);
  });

  it('a snapshot stops validating once a writer changed the VMA', () => {
    const { mm, vma } = setup();
    const snap = lookup(mm, A) as VmaSnapshot;
    expect(mprotectSync(mm, A, 4 * P, PROT_READ)).toEqual({ ok: true, value: 0 });
    expect(validate(snap)).toBe(false);
    expect(vma.vmFlags).not.toBe(snap.vmFlags);
    const again = lookup(mm, A) as VmaSnapshot;
    expect(again.vmFlags).toBe(vma.vmFlags);
    expect(validate(again)).toBe(true);
  });
});

describe('the speculative VMA lookup racing with a writer', () => {
  it.each([
    ['below the address', 2],
    ['exactly at the address', 3],
  ])('returns nothing when a writer shrank the VMA to end %s after the tree walk', (_name, endPage) => {
    const { mm, vma } = setup();
    const walk = mm.findVmaRcu.bind(mm);
    // A writer (the split of a munmap of the VMA's upper part, which shrinks it in place) runs after
    // find_vma_rcu() and completes before vm_sequence is sampled, so the sample is even and validates.
    mm.findVmaRcu = function* (addr: number) {
      const found = yield* walk(addr);
      yield* vmWriteBegin(vma);
      vma.vmEnd = A + endPage * P;
      yield* vmWriteEnd(vma);
      return found;
    };
    expect(lookup(mm, A + 3 * P)).toBeNull();
    expect(vma.detached).toBe(false);
  });
});
