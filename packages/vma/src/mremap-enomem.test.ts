import type { Page } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import type { MmStruct } from './mm-struct.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mremapSync } from './sync-api.js';
import { makeSystem, touch, pageStates } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
/** The source: the last page of one page table and the first page of the next (a 2 MiB boundary). */
const SRC = A + 0x200000 - P;
/** The destination, 1 GiB away: it needs a new page directory and two new page tables. */
const DST = A + 0x40000000 + 0x200000 - P;

function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => p.addr);
}

describe('mremap out of memory (move_vma moves the PTEs back and unmaps the new range)', () => {
  it('fails with ENOMEM and leaves the old mapping, its pages and physical memory as they were', () => {
    const { mm, mem } = makeSystem();
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    const r = mmapSync(mm, { addr: SRC, len: 2 * P, prot: PROT_READ | PROT_WRITE, flags });
    expect(r.ok).toBe(true);
    touch(mm, SRC, 2 * P);
    const pageList = [...mm.pageTables.presentPtes(SRC, SRC + 2 * P)].map((p) => p.page as Page);
    const before = { maps: procMaps(mm), present: present(mm), rss: [...mm.rss] };
    const outcomes: string[] = [];
    for (let left = 0; left <= 3; left++) {
      const taken: number[] = [];
      while (mem.freeCount > left) taken.push(mem.allocFrames(0));
      const res = mremapSync(mm, SRC, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, DST);
      if (res.ok) {
        outcomes.push(`${left}: moved`);
        expect(present(mm)).toEqual([DST, DST + P]);
      } else {
        outcomes.push(`${left}: ${res.errno === Errno.ENOMEM ? 'ENOMEM' : res.errno}`);
        expect({ maps: procMaps(mm), present: present(mm), rss: [...mm.rss] }).toEqual(before);
        // The same pages are still mapped once each: nothing was copied, lost or leaked.
        expect([...mm.pageTables.presentPtes(SRC, SRC + 2 * P)].map((p) => p.page)).toEqual(pageList);
        expect(pageList.map((p) => [p.refcount, p.mapcount])).toEqual([
          [1, 1],
          [1, 1],
        ]);
        // The page tables allocated for the new range were freed with it.
        expect(mem.freeCount, `${left} frames left`).toBe(left);
      }
      checkMmInvariants([mm], pageStates);
      for (const pfn of taken) mem.freeFrames(pfn);
    }
    // 0 or 1 frames: the first PTE cannot move; 2: the first moved (page directory + page table) and was
    // moved back when the second needed another table; 3: the whole move fits.
    expect(outcomes).toEqual(['0: ENOMEM', '1: ENOMEM', '2: ENOMEM', '3: moved']);
  });
});
