import { KernelFault } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import type { MmStruct } from './mm-struct.js';
import { ShmemZeroFile } from './vm-area.js';
import { PAGE_SIZE, VM_EXEC, VM_READ, VM_WRITE } from './vm-flags.js';

/** An mm invariant does not hold: the report lists every violation found. */
export class MmInvariantError extends KernelFault {
  override name = 'MmInvariantError';
  constructor(readonly problems: readonly string[]) {
    super('mm-invariant', `mm invariants violated:\n  ${problems.join('\n  ')}`);
  }
}

/** How the checker reads the state of a mapped page (a test may substitute a broken reader). */
export type PageStateReader = {
  /** The page's mapcount (number of PTEs mapping it across all mms). */
  mapcount(page: Page): number;
  /** The page's reference count. */
  refcount(page: Page): number;
  /** References held by something other than PTEs (page cache, swap cache...), to subtract. */
  extraRefs?(page: Page): number;
};

/**
 * The page state as it is: `struct page`'s mapcount and refcount, and the one reference a shmem file's
 * page cache holds on each of its pages.
 */
export const pageStates: PageStateReader = {
  mapcount: (p) => p.mapcount,
  refcount: (p) => p.refcount,
  extraRefs: (p) => (p.mapping instanceof ShmemZeroFile ? 1 : 0),
};

/**
 * Checks the invariants of a set of mms that share physical memory (a whole simulated system):
 * - the VMA tree is a sound B-tree, sorted and non-overlapping, and agrees with every VMA's fields;
 * - map_count equals the number of VMAs, each VMA page aligned, non-empty, inside the address space,
 *   live (not freed or detached), with no `vm_sequence` write section open, and linked only to anon_vmas
 *   that have not been freed;
 * - every present PTE lies inside a VMA and never grants more than it (write, user access, execute);
 * - the RSS counters equal the present PTEs of each type;
 * - with `pages`, each page's mapcount equals the PTEs mapping it, and its refcount is at least that.
 * Returns the list of problems (empty when all hold).
 */
export function mmInvariantProblems(mms: readonly MmStruct[], pages?: PageStateReader): string[] {
  const problems: string[] = [];
  const mapped = new Map<Page, number>();
  for (const mm of mms) {
    const p = (s: string) => problems.push(`${mm.name}: ${s}`);
    for (const t of mm.tree.validate()) p(`tree: ${t}`);
    let count = 0;
    let prevEnd = 0;
    for (const e of mm.tree.entries()) {
      const v = e.value;
      count++;
      if (v.vmStart !== e.start || v.vmEnd !== e.end) {
        p(`${v} is stored in the tree as [${e.start.toString(16)}, ${e.end.toString(16)})`);
      }
      if (v.vmStart % PAGE_SIZE || v.vmEnd % PAGE_SIZE) p(`${v} is not page aligned`);
      if (v.vmStart >= v.vmEnd) p(`${v} is empty`);
      if (v.vmStart < prevEnd) p(`${v} overlaps the previous VMA`);
      if (v.vmEnd > mm.taskSize) p(`${v} extends beyond TASK_SIZE`);
      if (v.poisoned) p(`${v} is in the tree but was freed (${v.poisoned})`);
      if (v.detached) p(`${v} is in the tree but marked detached`);
      if (v.vmMm !== mm) p(`${v} belongs to another mm`);
      // vm_write_begin()/vm_write_end() pair up around every change (SPF v12): between syscalls none is open.
      const seq = v.vmSequence.peek();
      if ((seq & 1) !== 0) p(`${v}'s vm_sequence is odd (${seq}): a write section was left open`);
      if (v.anonVma !== null && !v.anonVmaChain.some((c) => c.anonVma === v.anonVma)) {
        p(`${v} has an anon_vma it is not linked to`);
      }
      for (const c of v.anonVmaChain) {
        if (c.anonVma.freed) p(`${v} is linked to anon_vma#${c.anonVma.id}, which was freed`);
      }
      prevEnd = v.vmEnd;
    }
    if (count !== mm.mapCount) p(`map_count is ${mm.mapCount} but the tree holds ${count} VMAs`);
    const rss = [0, 0, 0, 0];
    for (const pte of mm.pageTables.presentPtes(0, mm.taskSize)) {
      const v = mm.vmaLookup(pte.addr);
      const at = `PTE at 0x${pte.addr.toString(16)}`;
      if (v === null) {
        p(`${at} is present outside every VMA`);
        continue;
      }
      if (pte.writable && !(v.vmFlags & VM_WRITE)) p(`${at} is writable in ${v}`);
      if (pte.user && !(v.vmFlags & (VM_READ | VM_WRITE | VM_EXEC))) p(`${at} is user-accessible in ${v}`);
      if (pte.executable && !(v.vmFlags & VM_EXEC)) p(`${at} is executable in ${v}`);
      if (pte.rssType >= 0) rss[pte.rssType]++;
      if (pte.page !== null) mapped.set(pte.page, (mapped.get(pte.page) ?? 0) + 1);
    }
    for (let i = 0; i < rss.length; i++) {
      if (i === 2) continue;
      if (rss[i] !== mm.rss[i]) p(`RSS counter ${i} is ${mm.rss[i]} but ${rss[i]} such PTEs are present`);
    }
  }
  if (pages) {
    for (const [page, n] of mapped) {
      const mc = pages.mapcount(page);
      if (mc !== n) problems.push(`a page mapped by ${n} PTEs has mapcount ${mc}`);
      const rc = pages.refcount(page) - (pages.extraRefs?.(page) ?? 0);
      if (rc < n) problems.push(`a page mapped by ${n} PTEs has only ${rc} references`);
    }
  }
  return problems;
}

/** Throws {@link MmInvariantError} if any invariant is violated (usable inside kernel code or a test). */
export function checkMmInvariants(mms: readonly MmStruct[], pages?: PageStateReader): void {
  const problems = mmInvariantProblems(mms, pages);
  if (problems.length > 0) throw new MmInvariantError(problems);
}
