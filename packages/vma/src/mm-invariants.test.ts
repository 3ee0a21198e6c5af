import { KernelFault, runSync } from '@spf/machine';
import { _PAGE_NX, _PAGE_RW, mkPte, type Page, pteMkspecial } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { checkMmInvariants, MmInvariantError, mmInvariantProblems, pageStates } from './mm-invariants.js';
import { MM_ANONPAGES, MM_SWAPENTS, MmStruct } from './mm-struct.js';
import { forkSync, mmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
const hex = (n: number) => n.toString(16);

/**
 * A sound mm named `mm` with three VMAs: [A, A+2P) read-only with its first page faulted, [A+2P, A+3P)
 * read-write right after it (adjacent, not overlapping) with its page faulted, and [A+5P, A+6P) PROT_NONE.
 */
function sound() {
  const { mm, mem } = makeSystem({ name: 'mm' });
  expect(mmapSync(mm, { addr: A, len: 2 * P, prot: PROT_READ, flags: FLAGS }).ok).toBe(true);
  expect(mmapSync(mm, { addr: A + 2 * P, len: P, prot: RW, flags: FLAGS }).ok).toBe(true);
  expect(mmapSync(mm, { addr: A + 5 * P, len: P, prot: 0, flags: FLAGS }).ok).toBe(true);
  touch(mm, A);
  touch(mm, A + 2 * P);
  expect(mmInvariantProblems([mm], pageStates)).toEqual([]);
  const vma = (addr: number) => {
    const v = mm.vmaLookup(addr);
    if (v === null) throw new Error(`no VMA at ${hex(addr)}`);
    return v;
  };
  return { mm, mem, pt: mm.pgd, vma };
}

function pageAt(mm: MmStruct, addr: number): Page {
  return [...mm.pageTables.presentPtes(addr, addr + P)][0].page as Page;
}

describe('mmInvariantProblems: the VMAs and the tree', () => {
  it('finds nothing wrong with a sound mm, adjacent VMAs and a VMA ending at TASK_SIZE included', () => {
    const { mm } = sound();
    const top = mm.taskSize - P;
    expect(mmapSync(mm, { addr: top, len: P, prot: RW, flags: FLAGS }).ok).toBe(true);
    expect(mmInvariantProblems([mm])).toEqual([]);
    expect(() => checkMmInvariants([mm])).not.toThrow();
  });

  it('reports a VMA whose fields disagree with the tree, unaligned, empty, overlapping or past TASK_SIZE', () => {
    let { mm, vma } = sound();
    let v = vma(A + 2 * P);
    v.vmEnd += P;
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: ${v} is stored in the tree as [${hex(A + 2 * P)}, ${hex(A + 3 * P)})`,
    ]);
    v.vmStart -= P;
    v.vmEnd -= P;
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: ${v} is stored in the tree as [${hex(A + 2 * P)}, ${hex(A + 3 * P)})`,
      `mm: ${v} overlaps the previous VMA`,
    ]);
    v.vmStart += P;
    v.vmStart += 1;
    expect(mmInvariantProblems([mm])).toContain(`mm: ${v} is not page aligned`);
    v.vmStart -= 1;
    v.vmEnd += 8;
    expect(mmInvariantProblems([mm])).toContain(`mm: ${v} is not page aligned`);
    v.vmEnd -= 8;
    v.vmEnd = v.vmStart;
    expect(mmInvariantProblems([mm])).toContain(`mm: ${v} is empty`);
    v.vmEnd = v.vmStart - P;
    expect(mmInvariantProblems([mm])).toContain(`mm: ${v} is empty`);

    ({ mm, vma } = sound());
    v = vma(A + 5 * P);
    v.vmEnd = mm.taskSize + P;
    expect(mmInvariantProblems([mm])).toContain(`mm: ${v} extends beyond TASK_SIZE`);
  });

  it('reports a VMA in the tree that was freed, detached, or belongs to another mm', () => {
    const { mm, vma } = sound();
    const v = vma(A + 5 * P);
    v.poisoned = 'vm_area_free';
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} is in the tree but was freed (vm_area_free)`]);
    v.poisoned = null;
    v.detached = true;
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} is in the tree but marked detached`]);
    v.detached = false;
    Object.defineProperty(v, 'vmMm', { value: new MmStruct() });
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} belongs to another mm`]);
  });

  it('reports a VMA whose vm_sequence write section was left open, and not one closed again', () => {
    const { mm, vma } = sound();
    const v = vma(A + 5 * P);
    runSync(v.vmSequence.writeBegin());
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: ${v}'s vm_sequence is odd (1): a write section was left open`,
    ]);
    runSync(v.vmSequence.writeEnd());
    expect(mmInvariantProblems([mm])).toEqual([]);
  });

  it('reports an anon_vma the VMA is not linked to, and a link to a freed anon_vma', () => {
    const { mm, vma } = sound();
    const v = vma(A);
    const chain = v.anonVmaChain;
    const av = v.anonVma;
    if (av === null) throw new Error('no anon_vma');
    v.anonVmaChain = [];
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} has an anon_vma it is not linked to`]);
    // Linked, but only to another VMA's anon_vma.
    v.anonVmaChain = vma(A + 2 * P).anonVmaChain;
    expect(vma(A + 2 * P).anonVma).not.toBe(av);
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} has an anon_vma it is not linked to`]);
    v.anonVmaChain = chain;
    av.freed = true;
    expect(mmInvariantProblems([mm])).toEqual([`mm: ${v} is linked to anon_vma#${av.id}, which was freed`]);
    av.freed = false;
    // A VMA without an anon_vma and without links is sound.
    expect(vma(A + 5 * P).anonVma).toBeNull();
    expect(mmInvariantProblems([mm])).toEqual([]);
  });

  it('reports a map_count out of step with the tree', () => {
    const { mm } = sound();
    mm.mapCount++;
    expect(mmInvariantProblems([mm])).toEqual(['mm: map_count is 4 but the tree holds 3 VMAs']);
    mm.mapCount -= 2;
    expect(mmInvariantProblems([mm])).toEqual(['mm: map_count is 2 but the tree holds 3 VMAs']);
  });

  it("reports the tree's own structural problems", () => {
    const { mm } = sound();
    const leaf = mm.tree.nodes()[0];
    leaf.poison('freed too early');
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: tree: ${leaf.line.label} is reachable but freed (freed too early)`,
    ]);
  });
});

describe('mmInvariantProblems: the page tables', () => {
  it('reports a PTE that grants more than its VMA: write, execute, or user access to PROT_NONE', () => {
    const { mm, pt, mem } = sound();
    const leaf = pt.leaf(A);
    if (!leaf) throw new Error('no PTE');
    pt.writeEntry(leaf.entryPa, leaf.entry | _PAGE_RW);
    const ro = mm.vmaLookup(A);
    expect(mmInvariantProblems([mm])).toEqual([`mm: PTE at 0x${hex(A)} is writable in ${ro}`]);
    pt.writeEntry(leaf.entryPa, leaf.entry & ~_PAGE_NX);
    expect(mmInvariantProblems([mm])).toEqual([`mm: PTE at 0x${hex(A)} is executable in ${ro}`]);
    pt.writeEntry(leaf.entryPa, leaf.entry);
    // A user PTE (present, user, NX) in the PROT_NONE VMA: the page is anonymous, so it is counted too.
    const page = mem.allocPages(0);
    page.set('anon');
    pt.map(A + 5 * P, page.pa, { flags: mkPte(page, 0n) | 0x5n | _PAGE_NX });
    const none = mm.vmaLookup(A + 5 * P);
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: PTE at 0x${hex(A + 5 * P)} is user-accessible in ${none}`,
      `mm: RSS counter ${MM_ANONPAGES} is 2 but 3 such PTEs are present`,
    ]);
  });

  it('a special PTE (no struct page behind it, as in a PFN map) is neither counted in RSS nor page-checked', () => {
    const { mm, pt, mem } = sound();
    const frame = mem.allocPages(0);
    pt.map(A + P, frame.pa, { flags: pteMkspecial(mkPte(frame, 0n) | 0x5n | _PAGE_NX) });
    expect([...mm.pageTables.presentPtes(A + P, A + 2 * P)].map((p) => [p.page, p.rssType])).toEqual([
      [null, -1],
    ]);
    expect(mmInvariantProblems([mm], pageStates)).toEqual([]);
  });

  it('reports a present PTE outside every VMA', () => {
    const { mm, pt, mem } = sound();
    const page = mem.allocPages(0);
    page.set('anon');
    pt.map(A + 3 * P, page.pa, { flags: mkPte(page, 0n) | 0x5n | _PAGE_NX });
    // Outside every VMA, so not counted in any RSS counter either.
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: PTE at 0x${hex(A + 3 * P)} is present outside every VMA`,
    ]);
  });

  it('compares the file, anon and shmem RSS counters with the PTEs, but not the swap-entry counter', () => {
    const { mm, pt, mem } = sound();
    mm.rss[MM_ANONPAGES]++;
    expect(mmInvariantProblems([mm])).toEqual([
      `mm: RSS counter ${MM_ANONPAGES} is 3 but 2 such PTEs are present`,
    ]);
    mm.rss[MM_ANONPAGES]--;
    // Swap entries are not present PTEs: MM_SWAPENTS is not compared.
    mm.rss[MM_SWAPENTS] = 5;
    expect(mmInvariantProblems([mm])).toEqual([]);
    // A file page (not anon) mapped read-only in the read-only VMA: counter 0 (MM_FILEPAGES) disagrees.
    const file = mem.allocPages(0);
    pt.map(A + P, file.pa, { flags: mkPte(file, 0n) | 0x5n | _PAGE_NX });
    expect(mmInvariantProblems([mm])).toEqual(['mm: RSS counter 0 is 0 but 1 such PTEs are present']);
    mm.rss[0] = 1;
    expect(mmInvariantProblems([mm])).toEqual([]);
  });
});

describe('mmInvariantProblems: page mapcounts and references', () => {
  it('checks each mapped page against the PTEs of every mm given, only when a reader is given', () => {
    const { mm } = sound();
    const wrong = { mapcount: () => 7, refcount: () => 7 };
    expect(mmInvariantProblems([mm], wrong)).toEqual([
      'a page mapped by 1 PTEs has mapcount 7',
      'a page mapped by 1 PTEs has mapcount 7',
    ]);
    expect(mmInvariantProblems([mm])).toEqual([]);
    const few = { mapcount: () => 1, refcount: () => 0 };
    expect(mmInvariantProblems([mm], few)).toEqual([
      'a page mapped by 1 PTEs has only 0 references',
      'a page mapped by 1 PTEs has only 0 references',
    ]);
    // Exactly one reference per PTE is enough.
    expect(mmInvariantProblems([mm], { mapcount: () => 1, refcount: () => 1 })).toEqual([]);
    // References held elsewhere are subtracted.
    const held = { mapcount: () => 1, refcount: () => 1, extraRefs: () => 1 };
    expect(mmInvariantProblems([mm], held)).toEqual([
      'a page mapped by 1 PTEs has only 0 references',
      'a page mapped by 1 PTEs has only 0 references',
    ]);
  });

  it('counts the PTEs of a page shared by a parent and its child after fork', () => {
    const { mm } = sound();
    const child = forkSync(mm);
    if (!(child instanceof MmStruct)) throw new Error('fork failed');
    const page = pageAt(mm, A);
    expect(page.mapcount).toBe(2);
    expect(mmInvariantProblems([mm, child], pageStates)).toEqual([]);
    // Judged one mm at a time, the page has one PTE but mapcount 2.
    expect(mmInvariantProblems([mm], pageStates)).toContain('a page mapped by 1 PTEs has mapcount 2');
    page.mapcount = 3;
    expect(mmInvariantProblems([mm, child], pageStates)).toContain('a page mapped by 2 PTEs has mapcount 3');
  });

  it("pageStates counts the page cache's reference on a shmem page, and none on an anonymous one", () => {
    const { mm } = makeSystem();
    expect(mmapSync(mm, { addr: A, len: P, prot: RW, flags: FLAGS }).ok).toBe(true);
    touch(mm, A);
    const anon = pageAt(mm, A);
    expect(pageStates.extraRefs?.(anon)).toBe(0);
    expect(pageStates.mapcount(anon)).toBe(anon.mapcount);
    expect(pageStates.refcount(anon)).toBe(anon.refcount);
    const shared = makeSystem();
    expect(
      mmapSync(shared.mm, {
        addr: A,
        len: P,
        prot: RW,
        flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      }).ok,
    ).toBe(true);
    const shm = shared.mm.vmaLookup(A)?.vmFile;
    const page = shared.mem.allocPages(0);
    page.mapping = shm as never;
    expect(pageStates.extraRefs?.(page)).toBe(1);
  });
});

describe('checkMmInvariants', () => {
  it('throws an MmInvariantError listing every problem, one per line', () => {
    const { mm } = sound();
    mm.mapCount++;
    mm.rss[MM_ANONPAGES]++;
    let caught: unknown = null;
    try {
      checkMmInvariants([mm]);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(MmInvariantError);
    expect(caught).toBeInstanceOf(KernelFault);
    const e = caught as MmInvariantError;
    expect(e.name).toBe('MmInvariantError');
    expect(e.kind).toBe('mm-invariant');
    expect(e.problems).toEqual([
      'mm: map_count is 4 but the tree holds 3 VMAs',
      `mm: RSS counter ${MM_ANONPAGES} is 3 but 2 such PTEs are present`,
    ]);
    expect(e.message).toBe(
      `mm invariants violated:\n  mm: map_count is 4 but the tree holds 3 VMAs\n  mm: RSS counter ${MM_ANONPAGES} is 3 but 2 such PTEs are present`,
    );
  });

  it('passes the page reader on', () => {
    const { mm } = sound();
    expect(() => checkMmInvariants([mm], { mapcount: () => 7, refcount: () => 7 })).toThrow(/mapcount 7/);
    expect(() => checkMmInvariants([mm], pageStates)).not.toThrow();
  });
});
