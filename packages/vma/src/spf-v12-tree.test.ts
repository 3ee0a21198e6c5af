import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { getVma, MmStruct, putVma } from './mm-struct.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';
import { mmapSync, munmapSync } from './sync-api.js';
import type { VmArea } from './vm-area.js';

const A = 0x1000_0000;

function mapped(mm: MmStruct): VmArea {
  const r = mmapSync(mm, {
    addr: A,
    len: 2 * 4096,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  if (!r.ok) throw new Error(`mmap: ${r.errno}`);
  return mm.findVma(A) as VmArea;
}

describe("SPF v12's VMA tree bookkeeping (MmConfig.spfV12)", () => {
  it('unlinking drops the tree reference after a grace period (vm_rcu_put); the last put frees at once', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: true } });
    const vma = mapped(mm);
    runSync(getVma(vma)); // a speculative fault's reference
    expect(munmapSync(mm, A, 2 * 4096).ok).toBe(true);
    expect(vma.poisoned).toBeNull(); // the tree's reference waits for a grace period
    runSync(mm.rcu.synchronize());
    expect(vma.poisoned).toBeNull(); // the fault still holds its reference
    expect(vma.refCount.value).toBe(1);
    runSync(putVma(vma));
    expect(vma.poisoned).toMatch(/last put_vma/); // __free_vma at once, no second grace period
  });

  it('rcuPut false drops the tree reference at once: a reader that found the VMA would touch freed memory', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: false } });
    const vma = mapped(mm);
    expect(munmapSync(mm, A, 2 * 4096).ok).toBe(true);
    expect(vma.poisoned).toMatch(/__free_vma/);
    expect(() => runSync(getVma(vma))).toThrow(/get_vma accessed freed vma/);
  });

  it('writes mm_seq around tree updates only with spfV12', () => {
    const plain = new MmStruct();
    mapped(plain);
    expect(plain.spfTreeSeq.peek()).toBe(0);
    const v12 = new MmStruct({ spfV12: { rcuPut: true } });
    mapped(v12);
    expect(v12.spfTreeSeq.peek()).toBe(2);
    expect(v12.childConfig().spfV12).toEqual({ rcuPut: true });
  });
});
