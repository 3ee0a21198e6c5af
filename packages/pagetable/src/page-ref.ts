import { block, type Kernel, KernelFault, self, wake, rmwEffect } from '@spf/machine';
import type { Page } from './page.js';
import { PageStateError } from './physical-memory.js';

/**
 * Kernel forms of the `struct page` counters and the page lock: each update is a locked read-modify-write
 * of the page's memory line, so two CPUs racing on a refcount show up on a Machine. Under `runSync` they
 * run instantly.
 */

/** A refcount went below zero or was raised from zero (a use-after-free of the `struct page`). */
export class PageRefError extends KernelFault {
  override name = 'PageRefError';
  constructor(message: string) {
    super('page-ref', message);
  }
}

function* who(): Kernel<string> {
  const s = yield* self();
  return `task '${s.task.name}' on CPU ${s.cpu}`;
}

/**
 * `get_page()` (include/linux/mm.h): takes a reference; the page must already have one. A tail page of a
 * high-order block counts on its head, as `folio_get(page_folio(page))` does.
 */
export function* getPage(tail: Page): Kernel<void> {
  const page = tail.head;
  yield rmwEffect(page.line, 'get_page');
  const v = page.refcount;
  if (v <= 0) throw new PageRefError(`get_page on frame 0x${page.pfn.toString(16)} with refcount ${v}`);
  page.refcount = v + 1;
}

/** `page_ref_add_unless()`/`get_page_unless_zero()`: takes a reference unless the count is zero. */
export function* getPageUnlessZero(tail: Page): Kernel<boolean> {
  const page = tail.head;
  yield rmwEffect(page.line, 'get_page_unless_zero');
  const v = page.refcount;
  if (v === 0) return false;
  page.refcount = v + 1;
  return true;
}

/**
 * `put_page()` (include/linux/mm.h, mm/swap.c `__folio_put()`): drops a reference (on the head of a
 * high-order block); the last one frees the whole block with the order it was allocated with. Returns true
 * when it freed the page.
 */
export function* putPage(tail: Page): Kernel<boolean> {
  const page = tail.head;
  yield rmwEffect(page.line, 'put_page');
  const v = page.refcount;
  if (v <= 0) throw new PageRefError(`put_page on frame 0x${page.pfn.toString(16)} with refcount ${v}`);
  page.refcount = v - 1;
  if (v - 1 > 0) return false;
  const freer = yield* who();
  page.mem.freeFrames(page.pfn, page.order, `put_page by ${freer}`);
  return true;
}

/** `atomic_inc(&page->_mapcount)`: one more PTE maps the page; returns true if it was the first. */
export function* pageMapcountInc(page: Page): Kernel<boolean> {
  yield rmwEffect(page.line, 'mapcount_inc');
  const v = page.mapcount;
  page.mapcount = v + 1;
  return v === 0;
}

/** `atomic_add_negative(-1, &page->_mapcount)`: one PTE fewer; returns true when the page became unmapped. */
export function* pageMapcountDec(page: Page): Kernel<boolean> {
  yield rmwEffect(page.line, 'mapcount_dec');
  const v = page.mapcount;
  if (v <= 0) throw new PageRefError(`mapcount of frame 0x${page.pfn.toString(16)} would go below zero`);
  page.mapcount = v - 1;
  return v === 1;
}

/** `trylock_page()`: test-and-set of PG_locked; true if this call took the lock. */
export function* trylockPage(page: Page): Kernel<boolean> {
  yield rmwEffect(page.line, 'trylock_page');
  if (page.test('locked')) return false;
  page.set('locked');
  return true;
}

/** `lock_page()`: sleeps (on the page wait queue) until PG_locked can be taken. */
export function* lockPage(page: Page): Kernel<void> {
  for (;;) {
    if (yield* trylockPage(page)) return;
    yield* block(page.mem.pageWaitQueue, () => !page.test('locked'), 'lock_page');
  }
}

/** `unlock_page()`: clears PG_locked and wakes the sleepers (they re-check; one of them wins). */
export function* unlockPage(page: Page): Kernel<void> {
  yield rmwEffect(page.line, 'unlock_page');
  if (!page.test('locked')) {
    throw new PageStateError(`unlock_page on frame 0x${page.pfn.toString(16)}, which is not locked`);
  }
  page.clear('locked');
  yield* wake(page.mem.pageWaitQueue, Number.POSITIVE_INFINITY);
}
