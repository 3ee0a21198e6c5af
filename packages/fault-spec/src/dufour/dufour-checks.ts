/**
 * The safety checks of Dufour's SPF v12, each a switch (all on by default, as posted). Turning one off
 * removes exactly that check from the speculative path (or, for `rcuFreeVma`, from how the mm unlinks
 * VMAs), so the explorer can show what it protects against.
 */
export interface DufourChecks {
  /** `find_vma_rcu()` repeats its tree walk while `mm->mm_seq` changed under it. */
  readonly mmSeqRetry: boolean;
  /** Abort when the `vm_sequence` snapshot is odd (a writer is changing the VMA). */
  readonly vmSequenceOdd: boolean;
  /** `read_seqcount_retry(&vma->vm_sequence)` after the page walk, before handling the PTE. */
  readonly vmSequenceAfterWalk: boolean;
  /** `vma_has_changed()` in `pte_map_lock()` before the PMD is re-read and the PTL taken. */
  readonly vmaChangedBeforeLock: boolean;
  /** `pmd_same()` in `pte_map_lock()`: the PMD still links the table the walk found. */
  readonly pmdSame: boolean;
  /** `vma_has_changed()` again once the PTE lock is held: the re-check after the PTL. */
  readonly ptlRecheck: boolean;
  /** The detached test of `vma_has_changed()` (`RB_EMPTY_NODE(&vma->vm_rb)`). */
  readonly detachedCheck: boolean;
  /** The page walk and `pte_map_lock()` run with interrupts disabled (TLB-shootdown IPIs wait for them). */
  readonly irqOffWalk: boolean;
  /** `spin_trylock()` of the PTE lock instead of `spin_lock()` (interrupts are off then). */
  readonly ptlTrylock: boolean;
  /** `get_vma()`/`put_vma()`: the fault holds a reference on the VMA (`vm_ref_count`). */
  readonly vmaRefcount: boolean;
  /** Unlinking drops the tree's VMA reference after a grace period (`call_rcu(vm_rcu_put)`). */
  readonly rcuFreeVma: boolean;
  /**
   * With `fileVmas` (the 2019 proposal): speculate on a file VMA only if the mm releases `vm_file` when the
   * last VMA reference goes (`__free_vma()`, @spf/vma's `vmFileRelease: 'freeVma'`, or later: `'rcu'`), so the
   * reference the fault holds keeps the file; with `'removeVma'` (Linux, v12) the file VMA is not speculated.
   */
  readonly vmFileLifetime: boolean;
  /**
   * With `fileVmas`: the speculative `filemap_fault()` / `filemap_map_pages()` re-check, with the page
   * locked, that it still belongs to the file (`page->mapping == mapping`: not truncated meanwhile).
   */
  readonly pageMappingRecheck: boolean;
}

/** Every check's name with one line on what it guards (for the README table and the course). */
export const DUFOUR_CHECKS: readonly { readonly name: keyof DufourChecks; readonly description: string }[] = [
  {
    name: 'mmSeqRetry',
    description: 'find_vma_rcu() retries its lookup while mm->mm_seq changed (a tree update ran)',
  },
  {
    name: 'vmSequenceOdd',
    description: 'abort when the vm_sequence snapshot is odd: a writer is changing the VMA',
  },
  {
    name: 'vmSequenceAfterWalk',
    description: 'read_seqcount_retry(vm_sequence) after the page walk re-validates bounds and flags',
  },
  {
    name: 'vmaChangedBeforeLock',
    description:
      "vma_has_changed() in pte_map_lock() before re-reading the PMD: the tables are still the VMA's",
  },
  {
    name: 'pmdSame',
    description: 'pmd_same() in pte_map_lock(): the PMD still links the PTE table the walk found',
  },
  {
    name: 'ptlRecheck',
    description: 'vma_has_changed() once the PTE lock is held: nothing changed the VMA before we locked',
  },
  {
    name: 'detachedCheck',
    description: 'vma_has_changed() also fails for a VMA unlinked from the tree (RB_EMPTY_NODE)',
  },
  {
    name: 'irqOffWalk',
    description:
      'the page walk and pte_map_lock() run with interrupts off, so shootdown IPIs and table freeing wait',
  },
  {
    name: 'ptlTrylock',
    description:
      'spin_trylock() of the PTE lock: spinning with interrupts off could wait for a CPU that waits for our IPI',
  },
  {
    name: 'vmaRefcount',
    description: 'get_vma()/put_vma() on vm_ref_count keep the VMA allocated after rcu_read_unlock()',
  },
  {
    name: 'rcuFreeVma',
    description: "unlinking drops the tree's VMA reference through call_rcu (vm_rcu_put), not at once",
  },
  {
    name: 'vmFileLifetime',
    description:
      'fileVmas: speculate on a file VMA only if vm_file is released with the last VMA reference (__free_vma), so get_vma() holds the file',
  },
  {
    name: 'pageMappingRecheck',
    description:
      'fileVmas: the speculative filemap_fault()/filemap_map_pages() re-check page->mapping once the page is locked (not truncated)',
  },
];

/** All checks on: SPF v12 as posted. */
export const DUFOUR_ALL_CHECKS: DufourChecks = Object.freeze(
  Object.fromEntries(DUFOUR_CHECKS.map((c) => [c.name, true])) as unknown as DufourChecks,
);
