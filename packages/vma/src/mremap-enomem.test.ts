import { Rcu } from '@spf/locks';
import { cpuRelax, Machine } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, type Page, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { sysMremap } from './mremap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
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

  it("a move into the space right after its own VMA (copy_vma() merged it into the source) that runs out of memory closes that VMA's one write section", () => {
    const { mm, mem } = makeSystem();
    const X = A + 0x400000; // a 2 MiB boundary: the page after it needs a new page table
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    // A faulted read-only VMA gives [X - 2 MiB, X) its page table; the unfaulted VMA after it has none of its own.
    expect(mmapSync(mm, { addr: X - 2 * P, len: P, prot: PROT_READ, flags }).ok).toBe(true);
    touch(mm, X - 2 * P);
    expect(mmapSync(mm, { addr: X - P, len: P, prot: PROT_READ | PROT_WRITE, flags }).ok).toBe(true);
    const src = mm.vmaLookup(X - P);
    expect(src?.anonVma).toBeNull();
    const seq = src?.vmSequence.peek();
    const before = procMaps(mm);
    const taken: number[] = [];
    while (mem.freeCount > 0) taken.push(mem.allocFrames(0));
    // Unfaulted, the moved page takes the offset of its new address, which continues the source's own:
    // the destination merges into the source VMA itself, and the table for it cannot be allocated.
    expect(mremapSync(mm, X - P, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, X)).toEqual({
      ok: false,
      errno: Errno.ENOMEM,
    });
    expect(procMaps(mm)).toEqual(before);
    // The section the merge opened on the source is closed once (a second vm_write_end() would find it
    // even), and so is every section of the VMAs left.
    expect((src?.vmSequence.peek() as number) % 2).toBe(0);
    expect((src?.vmSequence.peek() as number) > (seq as number)).toBe(true);
    for (const v of mm.vmas()) expect(v.vmSequence.peek() % 2).toBe(0);
    checkMmInvariants([mm], pageStates);
    for (const pfn of taken) mem.freeFrames(pfn);
  });

  it('the PTEs moved back are flushed from another CPU that used them at the new address meanwhile', () => {
    const m = new Machine({ cpus: 2 });
    const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
    const mmu = new Mmu(mem, { cpus: 2 });
    const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ mem, mmu }) });
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    const rw = PROT_READ | PROT_WRITE;
    // The destination's first page shares a page table with a faulted VMA there, its second page needs a
    // new one: with no frame free, one PTE moves and the next cannot, so that one is moved back.
    const dst = A + 0x600000 - P;
    expect(mmapSync(mm, { addr: SRC, len: 2 * P, prot: rw, flags }).ok).toBe(true);
    expect(mmapSync(mm, { addr: A + 0x400000, len: P, prot: PROT_READ, flags }).ok).toBe(true);
    touch(mm, SRC, 2 * P);
    touch(mm, A + 0x400000);
    for (const cpu of [0, 1]) mmu.switchMm(cpu, mm.pgd);
    const taken: number[] = [];
    while (mem.freeCount > 0) taken.push(mem.allocFrames(0));
    let running = true;
    let hits = 0;
    m.spawn(0, 'mremap', function* () {
      const r = yield* sysMremap(mm, SRC, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
      expect(r).toEqual({ ok: false, errno: Errno.ENOMEM });
      running = false;
    });
    m.spawn(1, 'user', function* () {
      while (running) {
        if (mmu.access(1, dst, ACCESS_USER | ACCESS_WRITE) >= 0) hits++;
        yield* cpuRelax();
      }
    });
    expect(m.run().failure).toBeNull();
    // CPU 1 did write through the moved PTE while it was at the new address...
    expect(hits).toBeGreaterThan(0);
    // ...and the translation it cached is gone: the new range is unmapped, and (sharing its page table
    // with the VMA there) the munmap of it frees no table and flushes nothing itself.
    expect(mmu.access(1, dst, ACCESS_USER)).toBe(-1);
    expect(mmu.access(1, SRC, ACCESS_USER | ACCESS_WRITE)).toBeGreaterThan(0);
    expect(present(mm)).toEqual([SRC, SRC + P, A + 0x400000]);
    checkMmInvariants([mm], pageStates);
    for (const pfn of taken) mem.freeFrames(pfn);
  });
});
