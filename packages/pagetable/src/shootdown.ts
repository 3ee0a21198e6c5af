import { type Kernel, self, sendIpi } from '@spf/machine';
import type { Mmu } from './mmu.js';
import { split } from './mmu.js';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX,
  _PAGE_PAT,
  _PAGE_PAT_LARGE,
  _PAGE_PCD,
  _PAGE_PKEY_MASK,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_PWT,
  _PAGE_RW,
  _PAGE_SAVED_DIRTY,
  PAGE_SIZE,
  _PAGE_SOFTW1,
  _PAGE_SOFTW2,
  _PAGE_SOFTW3,
  _PAGE_SOFTW4,
  _PAGE_USER,
  PTE_FLAGS_MASK,
  PTE_PFN_MASK,
} from './entry-bits.js';
import type { PageTables, VirtAddr } from './page-tables.js';

/**
 * `tlb_single_page_flush_ceiling` (arch/x86/mm/tlb.c): above this many pages a range flush becomes a flush
 * of the whole PCID.
 */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;

/** Flags whose clearing needs a flush; setting them does not (the CPU sets A and D itself; P was not cached). */
const FLUSH_ON_CLEAR = _PAGE_DIRTY | _PAGE_PRESENT | _PAGE_ACCESSED;
/** Flags a TLB never looks at. */
const SOFTWARE_FLAGS = _PAGE_SOFTW1 | _PAGE_SOFTW2 | _PAGE_SOFTW3 | _PAGE_SOFTW4 | _PAGE_SAVED_DIRTY;
/** Flags whose change in either direction needs a flush. */
const FLUSH_ON_CHANGE =
  _PAGE_RW |
  _PAGE_USER |
  _PAGE_PWT |
  _PAGE_PCD |
  _PAGE_PSE |
  _PAGE_GLOBAL |
  _PAGE_PAT |
  _PAGE_PAT_LARGE |
  _PAGE_PKEY_MASK |
  _PAGE_NX;

/**
 * Whether rewriting a PTE from `oldPte` to `newPte` leaves a translation in some TLB that must be flushed.
 * Models `pte_needs_flush()` with `pte_flags_need_flush(..., ignore_access = true)` in
 * arch/x86/include/asm/tlbflush.h: a non-present old entry was never cached; a new frame always needs a
 * flush; otherwise a flush is needed when D (or P) is cleared or when any permission, caching, size,
 * global or protection-key bit changes. Software bits and A never need one.
 */
export function pteNeedsFlush(oldPte: bigint, newPte: bigint): boolean {
  if ((oldPte & _PAGE_PRESENT) === 0n) return false;
  if ((oldPte & PTE_PFN_MASK) !== (newPte & PTE_PFN_MASK)) return true;
  const oldFlags = oldPte & PTE_FLAGS_MASK;
  const diff = (oldFlags ^ (newPte & PTE_FLAGS_MASK)) & ~SOFTWARE_FLAGS & ~_PAGE_ACCESSED;
  return (diff & oldFlags & FLUSH_ON_CLEAR) !== 0n || (diff & FLUSH_ON_CHANGE) !== 0n;
}

/** Invalidates `[start, end)` of address space `mm` in `cpu`'s TLB (the body of `flush_tlb_func()`). */
export function flushTlbRangeLocal(
  mmu: Mmu,
  cpu: number,
  mm: PageTables,
  start: VirtAddr,
  end: VirtAddr,
): void {
  const st = mmu.cpu(cpu);
  const pcid = st.pcide ? mm.pcid : 0;
  const s = BigInt(start);
  const e = BigInt(end);
  const pages = (e - s + 4095n) / BigInt(PAGE_SIZE);
  if (pages > BigInt(TLB_SINGLE_PAGE_FLUSH_CEILING)) {
    st.tlb.flushPcid(pcid);
    return;
  }
  for (let a = s; a < e; a += BigInt(PAGE_SIZE)) {
    const [hi, lo] = split(a);
    st.tlb.invalidate(hi, lo, pcid, false);
  }
}

/**
 * `flush_tlb_mm_range()` (arch/x86/mm/tlb.c), kernel form: flushes `[start, end)` of `mm` on this CPU if it
 * is in `mm_cpumask(mm)`, then sends an IPI to every other CPU in the mask and waits for all of them to
 * acknowledge (`native_flush_tlb_multi()` → `on_each_cpu_cond_mask(..., wait=true)`); each target
 * invalidates the range in its own TLB. Must be called with interrupts on (the sender spins for the acks).
 *
 * Simplification: Linux skips CPUs that are lazily in another mm and tracks TLB generations; here every CPU
 * in the mask is interrupted (the mask is never cleared), which is correct and at worst costs extra IPIs.
 */
export function* flushTlbMmRange(mmu: Mmu, mm: PageTables, start: VirtAddr, end: VirtAddr): Kernel<void> {
  const me = (yield* self()).cpu;
  if (mm.cpumask.has(me)) flushTlbRangeLocal(mmu, me, mm, start, end);
  const targets = mm.cpumask.cpus().filter((c) => c !== me);
  if (targets.length === 0) return;
  yield* sendIpi(
    targets,
    function* (cpu: number): Kernel<void> {
      flushTlbRangeLocal(mmu, cpu, mm, start, end);
    },
    true,
    'flush_tlb_mm_range',
  );
}

/** `flush_tlb_page()`: one page. */
export function* flushTlbPage(mmu: Mmu, mm: PageTables, addr: VirtAddr): Kernel<void> {
  const a = BigInt(addr) & ~0xfffn;
  yield* flushTlbMmRange(mmu, mm, a, a + BigInt(PAGE_SIZE));
}
