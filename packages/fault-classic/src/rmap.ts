import { type Kernel, writeEffect } from '@spf/machine';
import { type Page, pageMapcountDec, pageMapcountInc } from '@spf/pagetable';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, type VmArea } from '@spf/vma';

/**
 * Models `folio_add_new_anon_rmap()` in mm/rmap.c for a single new page: it becomes an anonymous page of
 * `vma`'s anon_vma at `vma`'s linear index for `addr`, mapped once and exclusive to this process. The page
 * is not yet visible to anyone else, so the updates are one plain write of its `struct page`.
 */
export function* folioAddNewAnonRmap(page: Page, vma: VmArea, addr: number): Kernel<void> {
  yield writeEffect(page.line, 'folio_add_new_anon_rmap');
  page.mapping = vma.anonVma;
  page.index = vma.linearPageIndex(addr);
  page.mapcount = 1;
  page.set('anon');
  page.set('swapbacked');
  page.set('uptodate');
}

/** Models `folio_add_file_rmap_pte()` in mm/rmap.c: one more PTE maps a page-cache page. */
export function* folioAddFileRmap(page: Page): Kernel<void> {
  yield* pageMapcountInc(page);
}

/** Models `folio_remove_rmap_pte()` in mm/rmap.c: one PTE fewer maps the page. */
export function* folioRemoveRmap(page: Page): Kernel<void> {
  yield* pageMapcountDec(page);
}

/** Models `mm_counter_file()` in include/linux/mm.h: shmem pages (swap-backed) vs. ordinary file pages. */
export function mmCounterFile(page: Page): number {
  return page.test('swapbacked') ? MM_SHMEMPAGES : MM_FILEPAGES;
}

/** Models `mm_counter()` in include/linux/mm.h: which RSS counter a mapped page is accounted in. */
export function mmCounter(page: Page): number {
  return page.test('anon') ? MM_ANONPAGES : mmCounterFile(page);
}
