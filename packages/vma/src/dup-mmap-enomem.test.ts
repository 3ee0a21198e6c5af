import { KernelAssertionError } from '@spf/machine';
import type { Page } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { ForkOutOfMemoryError } from './dup-mmap.js';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import type { MmStruct } from './mm-struct.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { forkSync, mmapSync } from './sync-api.js';
import { makeSystem, touch, pageStates } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;

function map(mm: MmStruct, page: number, n: number) {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
  const r = mmapSync(mm, { addr: A + page * P, len: n * P, prot: PROT_READ | PROT_WRITE, flags });
  if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
}
function present(mm: MmStruct): number[] {
  return [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
}
function pageAt(mm: MmStruct, addr: number): Page {
  return [...mm.pageTables.presentPtes(addr, addr + P)][0].page as Page;
}
function snapshot(mm: MmStruct) {
  return { maps: procMaps(mm), present: present(mm), mapCount: mm.mapCount };
}

describe('fork out of memory (dup_mmap returns -ENOMEM)', () => {
  /** Takes frames until only `left` are free; returns them for release. */
  function hog(mem: ReturnType<typeof makeSystem>['mem'], left: number): number[] {
    const taken: number[] = [];
    while (mem.freeCount > left) taken.push(mem.allocFrames(0));
    return taken;
  }

  it('tears the partial child down: no frame, reference or mapcount leaks, the parent is intact', () => {
    const { mm, mem } = makeSystem();
    // Two VMAs 1 GiB apart: the child needs pgd + pud + pmd + pte for the first, pmd + pte for the second.
    map(mm, 0, 2);
    const far = 0x40000000 / P;
    map(mm, far, 1);
    touch(mm, A, 2 * P);
    touch(mm, A + far * P);
    const refs = () => [A, A + P, A + far * P].map((a) => [pageAt(mm, a).refcount, pageAt(mm, a).mapcount]);
    const before = { ...snapshot(mm), refs: refs(), rss: [...mm.rss] };
    let failures = 0;
    for (let left = 0; left <= 6; left++) {
      const taken = hog(mem, left);
      const free = mem.freeCount;
      let child: MmStruct | null = null;
      try {
        child = forkSync(mm, PagetableOps.factory({ mem }));
      } catch (e) {
        if (!(e instanceof ForkOutOfMemoryError)) throw e;
        expect(e.errno).toBe(Errno.ENOMEM);
        failures++;
      }
      if (child === null) {
        expect(mem.freeCount, `${left} frames left`).toBe(free);
        expect({ ...snapshot(mm), refs: refs(), rss: [...mm.rss] }).toEqual(before);
        checkMmInvariants([mm], pageStates);
      } else {
        // Six page-table pages are enough.
        expect(left).toBe(6);
        expect(present(child)).toEqual([0, 1, far]);
      }
      for (const pfn of taken) mem.freeFrames(pfn);
    }
    // 0 left: no pgd; 1-3: the first VMA's tables; 4-5: the second's, after the first VMA's PTEs were
    // copied (references taken, then dropped again by the teardown).
    expect(failures).toBe(6);
  });
});

describe('fork errors that are not out of memory', () => {
  it('propagate unchanged instead of becoming ENOMEM', () => {
    const { mm, mem } = makeSystem();
    map(mm, 0, 1);
    touch(mm, A);
    const broken = (child: MmStruct) => {
      const ops = new PagetableOps(child, { mem });
      ops.copyPageRange = function* () {
        yield* [];
        throw new KernelAssertionError('copy_page_range: corrupted PTE');
      };
      return ops;
    };
    let thrown: unknown = null;
    try {
      forkSync(mm, broken);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(KernelAssertionError);
    expect((thrown as Error).message).toBe('copy_page_range: corrupted PTE');
  });
});
