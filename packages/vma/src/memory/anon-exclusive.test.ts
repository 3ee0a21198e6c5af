import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { pageAnonExclusive } from './anon-exclusive.js';

describe('PageAnonExclusive', () => {
  const mem = new PhysicalMemory({ size: 1024 * 1024 });
  function page(anon: boolean, mapcount: number, refcount: number) {
    const p = mem.allocPages(0);
    if (anon) p.set('anon');
    p.mapcount = mapcount;
    p.refcount = refcount;
    return p;
  }

  it('an anonymous page mapped once and referenced once may be written in place', () => {
    expect(pageAnonExclusive(page(true, 1, 1))).toBe(true);
  });

  it('is not exclusive when shared after fork, pinned by another reference, unmapped, or not anonymous', () => {
    expect(pageAnonExclusive(page(true, 2, 2))).toBe(false); // fork: two PTEs
    expect(pageAnonExclusive(page(true, 1, 2))).toBe(false); // an extra reference (swap cache, GUP)
    expect(pageAnonExclusive(page(true, 2, 1))).toBe(false);
    expect(pageAnonExclusive(page(true, 0, 1))).toBe(false);
    expect(pageAnonExclusive(page(false, 1, 1))).toBe(false); // a page-cache page is never anon-exclusive
  });
});
