import { runSync } from '@spf/machine';
import { ptePfn, pteWrite } from '@spf/pagetable';
import {
  anonVmaPrepare,
  MAP_PRIVATE,
  type LockedPte,
  MM_ANONPAGES,
  PROT_READ,
  PROT_WRITE,
  pteAllocMap,
  pteOffsetMapLock,
  VM_WRITE,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { doAnonymousPage } from './do-anonymous-page.js';
import {
  FAULT_FLAG_ORIG_PTE_VALID,
  FAULT_FLAG_SPECULATIVE,
  FAULT_FLAG_WRITE,
  VM_FAULT_RETRY,
} from './fault-flags.js';
import { handlePteFault } from './handle-mm-fault.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';
import type { ClassicVmFault, SpeculativeFaultHooks } from './vm-fault.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

/** A design's pte_map_lock that succeeds (pte_offset_map_lock) or refuses, counting its calls. */
function hooks(succeed: boolean): SpeculativeFaultHooks & { calls: number } {
  const h = {
    calls: 0,
    *pteMapLock(vmf: ClassicVmFault) {
      h.calls++;
      if (!succeed) return null;
      return (yield* pteOffsetMapLock(vmf.mm.pgd, vmf.pmd, vmf.address)) as LockedPte | null;
    },
  };
  return h;
}

function speculativeVmf(
  fx: ReturnType<typeof makeFixture>,
  flags: number,
  h: SpeculativeFaultHooks,
): ClassicVmFault {
  const base = fx.vmfAt(A, flags | FAULT_FLAG_SPECULATIVE);
  runSync(pteAllocMap(fx.env, fx.mm, A));
  const ptep = runSync(fx.pt.pteOffsetMap(base.pmd, A)) as number;
  const origPte = runSync(fx.pt.ptepGet(ptep));
  return {
    ...base,
    flags: base.flags | FAULT_FLAG_ORIG_PTE_VALID,
    pte: origPte === 0n ? null : ptep,
    origPte,
    origPmd: runSync(fx.pt.pmdpGet(base.pmd)),
    speculative: h,
  };
}

describe('the speculative seam (FAULT_FLAG_SPECULATIVE + pte_map_lock hook)', () => {
  it('do_anonymous_page locks through the design hook and maps with the cached vma_flags/vma_page_prot', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    runSync(anonVmaPrepare(fx.mm.findVma(A)!));
    const h = hooks(true);
    const vmf = speculativeVmf(fx, FAULT_FLAG_WRITE, h);
    // The VMA "changes" after the fault copied its flags: the copy decides (read-only here).
    const cached = { ...vmf, vmaFlags: vmf.vmaFlags & ~VM_WRITE };
    expect(runSync(doAnonymousPage(cached))).toBe(0);
    expect(h.calls).toBe(1);
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('a refused pte_map_lock makes do_anonymous_page return VM_FAULT_RETRY and free its page', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    runSync(anonVmaPrepare(fx.mm.findVma(A)!));
    const vmf = speculativeVmf(fx, FAULT_FLAG_WRITE, hooks(false));
    const free = fx.mem.freeCount;
    expect(runSync(doAnonymousPage(vmf))).toBe(VM_FAULT_RETRY);
    expect(fx.mem.freeCount).toBe(free);
    expect(fx.pte(A)).toBe(0n);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
  });

  it('a refused pte_map_lock in wp_page_copy returns VM_FAULT_RETRY, frees the copy and keeps the old page', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true }); // the zero page
    const zero = fx.pte(A);
    const free = fx.mem.freeCount;
    runSync(anonVmaPrepare(fx.mm.findVma(A)!));
    const vmf = speculativeVmf(fx, FAULT_FLAG_WRITE, hooks(false));
    expect(runSync(handlePteFault(vmf))).toBe(VM_FAULT_RETRY);
    expect(fx.pte(A)).toBe(zero);
    expect(fx.mem.freeCount).toBe(free);
  });

  it('do_wp_page copies the zero page speculatively when the hook succeeds (spinlock, then map_lock)', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true });
    runSync(anonVmaPrepare(fx.mm.findVma(A)!));
    const h = hooks(true);
    const vmf = speculativeVmf(fx, FAULT_FLAG_WRITE, h);
    expect(runSync(handlePteFault(vmf))).toBe(0);
    expect(h.calls).toBe(2); // pte_spinlock in handle_pte_fault, pte_map_lock in wp_page_copy
    expect(ptePfn(fx.pte(A))).not.toBe(fx.mem.zeroPfn);
    expect(pteWrite(fx.pte(A))).toBe(true);
  });

  it('a speculative fault on a file VMA or a non-present PTE gives up with VM_FAULT_RETRY', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    const vmf = speculativeVmf(fx, 0, hooks(true));
    expect(runSync(handlePteFault(vmf))).toBe(VM_FAULT_RETRY);
    expect(file.faultCalls).toBe(0);
    // A swap-like (non-present, non-none) PTE: do_swap_page() is not tried speculatively.
    expect(runSync(handlePteFault({ ...vmf, pte: 0, origPte: 0x200n }))).toBe(VM_FAULT_RETRY);
  });
});
