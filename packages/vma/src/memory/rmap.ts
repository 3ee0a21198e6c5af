import { type Kernel, writeEffect } from '@spf/machine';
import { type Page, pageMapcountDec, pageMapcountInc } from '@spf/pagetable';
import type { VmArea } from '../vm-area.js';

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
