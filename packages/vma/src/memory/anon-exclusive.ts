import type { Page } from '@spf/pagetable';

/**
 * Models `PageAnonExclusive()` (include/linux/page-flags.h) as `do_wp_page()` (reuse instead of copy),
 * `can_change_pte_writable()` in mm/mprotect.c and fork's `copy_present_pte()` consult it: an anonymous
 * page mapped by this one PTE and referenced by nothing else, so its owner may write it in place.
 *
 * Simplification: Linux keeps an explicit flag that fork clears and a write fault sets again; we derive the
 * answer from the counts (anonymous, mapcount 1, refcount 1), which agrees with the flag in everything we
 * model (no swap cache, no KSM, no GUP pins).
 */
export function pageAnonExclusive(page: Page): boolean {
  return page.test('anon') && page.mapcount === 1 && page.refcount === 1;
}
