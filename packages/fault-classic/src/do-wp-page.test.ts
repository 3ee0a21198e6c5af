import { runSync } from '@spf/machine';
import {
  getPage,
  PF_P,
  PF_USER,
  PF_WRITE,
  pfnPte,
  putPage,
  pteDirty,
  pteMkold,
  pteMkspecial,
  ptePfn,
  pteWrite,
  pteWrprotect,
} from '@spf/pagetable';
import {
  dupMmap,
  MAP_PRIVATE,
  MAP_SHARED,
  MM_ANONPAGES,
  MM_FILEPAGES,
  type MmStruct,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
  pteAllocMap,
  type MmapFile,
  VM_PFNMAP,
  type VmArea,
} from '@spf/vma';
import { wpPageCopy } from './do-wp-page.js';
import { FAULT_FLAG_WRITE, VM_FAULT_SIGBUS } from './fault-flags.js';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFaultCounters } from './fault-counters.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_wp_page', () => {
  it('write after read of the zero page allocates a private zeroed page (a COW of the zero page)', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(fx.touch(A, 'w', 7)).toMatchObject({ ok: true, faults: 1 });
    const pte = fx.pte(A);
    expect(ptePfn(pte)).not.toBe(fx.mem.zeroPfn);
    expect(pteWrite(pte)).toBe(true);
    expect(fx.touch(A, 'r')).toMatchObject({ value: 7 });
    expect(fx.touch(A + 1, 'r')).toMatchObject({ value: 0 });
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.task.minflt).toBe(2);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.invariantProblems()).toEqual([]);
  });

  it('COW after fork: the writer gets a copy, the other side keeps the old contents, and the last one reuses', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    fx.touch(A, 'w', 0x11);
    const parentPfn = ptePfn(fx.pte(A));
    const child: MmStruct = fx.track(
      runSync(dupMmap(fx.mm, PagetableOps.factory({ mem: fx.mem, mmu: fx.mmu }))),
    );
    const childTask = new TaskFaultCounters();
    // Both see the same page, write-protected, with two references.
    expect(ptePfn(fx.pte(A, child))).toBe(parentPfn);
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(fx.mem.page(parentPfn).refcount).toBe(2);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ ok: true, value: 0x11, faults: 0 });

    // The child writes: it gets its own copy holding the old contents.
    expect(fx.touch(A, 'w', 0x22, child, childTask)).toMatchObject({ ok: true, faults: 1 });
    const childPfn = ptePfn(fx.pte(A, child));
    expect(childPfn).not.toBe(parentPfn);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ value: 0x22 });
    expect(fx.touch(A + 1, 'r', 0, child, childTask)).toMatchObject({ value: 0 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 0x11 });
    expect(fx.mem.page(parentPfn).refcount).toBe(1);

    // The parent writes: its page is exclusive now, so it is reused in place, not copied.
    expect(fx.touch(A, 'w', 0x33)).toMatchObject({ ok: true, faults: 1 });
    expect(ptePfn(fx.pte(A))).toBe(parentPfn);
    expect(fx.env.vmstat.cowReuses).toBe(1);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ value: 0x22 });
    expect(childTask.minflt).toBe(1);
    expect(fx.invariantProblems([fx.mm, child])).toEqual([]);
  });
});

describe('do_wp_page on shared mappings (wp_page_shared, wp_pfn_shared)', () => {
  it('a write to a shared file page mapped read-only asks ->page_mkwrite, then makes the same PTE writable and dirty', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, file.mmapFile());
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1 });
    const page = file.cachePage(0);
    const refs = page.refcount;
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(fx.touch(A, 'w', 9)).toMatchObject({ ok: true, faults: 1 });
    expect(file.mkwriteCalls).toBe(1);
    expect(ptePfn(fx.pte(A))).toBe(page.pfn);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(pteDirty(fx.pte(A))).toBe(true);
    expect(page.refcount).toBe(refs); // the reference held across ->page_mkwrite was dropped
    expect(fx.env.vmstat.cowCopies).toBe(0);
    expect(fx.mem.read8(page.pa)).toBe(9); // written through to the page cache
  });

  it('->page_mkwrite failing (SIGBUS) leaves the PTE read-only and drops its reference', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = file.ops();
    ops.pageMkwrite = function* () {
      file.mkwriteCalls++;
      return VM_FAULT_SIGBUS;
    };
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, { file, ops, readable: true, writable: true });
    fx.touch(A, 'r');
    const page = file.cachePage(0);
    const refs = page.refcount;
    const before = fx.pte(A);
    expect(fx.touch(A, 'w')).toEqual({ kind: 'sigbus', address: A });
    expect(fx.pte(A)).toBe(before);
    expect(page.refcount).toBe(refs);
    expect(fx.mm.mmapLock.isLocked()).toBe(false);
  });

  it('a shared mapping without ->page_mkwrite is made writable in place', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = file.ops();
    delete ops.pageMkwrite;
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, { file, ops, readable: true, writable: true });
    fx.touch(A, 'r');
    // Without ->page_mkwrite a read already maps the page writable; write-protect it (as writeback would).
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    fx.pt.writeEntry(ptep, pteWrprotect(fx.pte(A)));
    runSync(fx.mm.pageTables.flushTlbPage(A));
    const pfn = ptePfn(fx.pte(A));
    expect(fx.touch(A, 'w', 4)).toMatchObject({ ok: true, faults: 1 });
    expect(ptePfn(fx.pte(A))).toBe(pfn);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(file.mkwriteCalls).toBe(0);
  });

  it('the PTE changed while ->page_mkwrite ran: nothing is mapped, the access is simply retried', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = file.ops();
    let ptep = 0;
    ops.pageMkwrite = function* () {
      file.mkwriteCalls++;
      fx.pt.writeEntry(ptep, pteMkold(fx.pt.readEntry(ptep))); // another CPU aged the PTE meanwhile
      return 0;
    };
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, { file, ops, readable: true, writable: true });
    fx.touch(A, 'r');
    ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const page = file.cachePage(0);
    const refs = page.refcount;
    expect(fx.fault(A, PF_USER | PF_WRITE | PF_P)).toEqual({ kind: 'handled' });
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(page.refcount).toBe(refs);
  });
});

describe('wp_page_copy', () => {
  it('a write to a private file page copies it: the mm counts one anonymous page instead of a file page', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    fx.touch(A, 'r');
    const page = file.cachePage(0);
    expect([fx.mm.rss[MM_FILEPAGES], fx.mm.rss[MM_ANONPAGES]]).toEqual([1, 0]);
    expect(fx.touch(A + 2, 'w', 0x77)).toMatchObject({ ok: true, faults: 1 });
    expect([fx.mm.rss[MM_FILEPAGES], fx.mm.rss[MM_ANONPAGES]]).toEqual([0, 1]);
    expect(page.mapcount).toBe(0);
    expect(page.refcount).toBe(1); // the page cache's own
    expect(fx.mem.read8(page.pa)).toBe(1); // the file is untouched
    const copy = fx.mem.page(ptePfn(fx.pte(A)));
    expect(copy.test('anon')).toBe(true);
    expect(copy.mapcount).toBe(1);
    expect(copy.refcount).toBe(1);
    expect(fx.touch(A, 'r')).toMatchObject({ value: 1 }); // copied, not zeroed
    expect(fx.touch(A + 2, 'r')).toMatchObject({ value: 0x77 });
  });

  it('a forced write to a private read-only mapping copies without making the PTE writable (maybe_mkwrite)', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ);
    fx.touch(A, 'r');
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    vmf.origPte = fx.pte(A);
    expect(runSync(wpPageCopy(vmf, null))).toBe(0);
    expect(ptePfn(fx.pte(A))).not.toBe(fx.mem.zeroPfn);
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(pteDirty(fx.pte(A))).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
  });

  it('out of memory for the copy: VM_FAULT_OOM, the old page keeps its mapping and loses the extra reference', () => {
    const fx = makeFixture({ memory: 64 * 4096 });
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.mmapFile());
    fx.touch(A, 'r');
    const page = file.cachePage(0);
    const refs = page.refcount;
    const before = fx.pte(A);
    while (fx.mem.freeCount > 0) fx.mem.allocPages(0);
    expect(fx.touch(A, 'w')).toEqual({ kind: 'oom', address: A });
    expect(fx.pte(A)).toBe(before);
    expect(page.refcount).toBe(refs);
    expect(fx.mm.rss[MM_FILEPAGES]).toBe(1);
  });

  it('the PTE changed before the copy could be installed: the copy is freed, the other PTE stays', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'w', 5);
    const child: MmStruct = fx.track(
      runSync(dupMmap(fx.mm, PagetableOps.factory({ mem: fx.mem, mmu: fx.mmu }))),
    );
    const shared = fx.mem.page(ptePfn(fx.pte(A)));
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    vmf.origPte = pteMkold(fx.pte(A)); // what this CPU read before another CPU touched the PTE
    const free = fx.mem.freeCount;
    runSync(getPage(shared)); // do_wp_page's reference for the copy
    expect(runSync(wpPageCopy(vmf, shared))).toBe(0);
    expect(fx.mem.freeCount).toBe(free);
    expect(shared.refcount).toBe(2);
    expect(ptePfn(fx.pte(A))).toBe(shared.pfn);
    expect(fx.env.vmstat.cowCopies).toBe(0);
    expect(fx.touch(A, 'r', 0, child)).toMatchObject({ value: 5 });
  });

  it('a PTE table gone before the copy could be installed: the copy and the reference are dropped', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    vmf.origPte = fx.pte(A);
    const free = fx.mem.freeCount;
    const pt = fx.mm.pgd;
    const real = pt.pteOffsetIn.bind(pt);
    pt.pteOffsetIn = () => {
      return null;
    };
    expect(runSync(wpPageCopy(vmf, null))).toBe(0);
    pt.pteOffsetIn = real;
    expect(fx.mem.freeCount).toBe(free);
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(vmf.ptl).toBeNull();
  });

  it('the old translation is flushed before the copy is mapped: the writer reads its own copy at once', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r'); // the zero page, now cached in the TLB
    expect(fx.touch(A, 'w', 0x5c)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 0x5c, faults: 0 });
    expect(fx.mem.read8(fx.mem.zeroPfn * 4096)).toBe(0);
  });
});

describe('do_wp_page on PFN mappings and at the edges', () => {
  /** Maps `pfn` read-only and special at A in a VM_PFNMAP VMA (as remap_pfn_range would). */
  function pfnMap(fx: ReturnType<typeof makeFixture>, flags: number, pfn: number, file?: MmapFile): VmArea {
    if (file) fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, flags, file);
    else fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE, flags);
    const vma = fx.mm.findVma(A) as VmArea;
    vma.vmFlags |= VM_PFNMAP;
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    fx.pt.writeEntry(ptep, pteMkspecial(pfnPte(pfn, pteWrprotect(vma.vmPageProt))));
    return vma;
  }

  it('a write to a private PFN mapping (no struct page behind the PTE) gets a fresh anonymous page', () => {
    const fx = makeFixture();
    const raw = fx.mem.allocPages(0);
    const vma = pfnMap(fx, MAP_PRIVATE, raw.pfn);
    expect(fx.touch(A, 'w', 6)).toMatchObject({ ok: true, faults: 1 });
    const copy = fx.mem.page(ptePfn(fx.pte(A)));
    expect(copy.pfn).not.toBe(raw.pfn);
    expect(copy.test('anon')).toBe(true);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(raw.refcount).toBe(1);
    zapAll(fx, vma);
  });

  it('a write to a shared PFN mapping makes the same PTE writable without ->page_mkwrite (wp_pfn_shared)', () => {
    const fx = makeFixture();
    const raw = fx.mem.allocPages(0);
    const file = new TestFile(fx.mem);
    const vma = pfnMap(fx, MAP_SHARED, raw.pfn, file.mmapFile());
    expect(fx.touch(A, 'w', 6)).toMatchObject({ ok: true, faults: 1 });
    expect(ptePfn(fx.pte(A))).toBe(raw.pfn);
    expect(pteWrite(fx.pte(A))).toBe(true);
    expect(file.mkwriteCalls).toBe(0);
    expect(raw.refcount).toBe(1);
    zapAll(fx, vma);
  });

  it('out of memory breaking COW of the zero page: VM_FAULT_OOM, the zero page stays mapped', () => {
    const fx = makeFixture({ memory: 64 * 4096 });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    while (fx.mem.freeCount > 0) fx.mem.allocPages(0);
    expect(fx.touch(A, 'w')).toEqual({ kind: 'oom', address: A });
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
  });

  it('the PTE table vanished while ->page_mkwrite ran: nothing is mapped and the reference is dropped', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    const ops = file.ops();
    const pt = fx.mm.pgd;
    const real = pt.pteOffsetIn.bind(pt);
    ops.pageMkwrite = function* () {
      pt.pteOffsetIn = () => {
        return null;
      };
      return 0;
    };
    fx.mmapFile(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED, { file, ops, readable: true, writable: true });
    fx.touch(A, 'r');
    const page = file.cachePage(0);
    const refs = page.refcount;
    const before = fx.pte(A);
    expect(fx.fault(A, PF_USER | PF_WRITE | PF_P)).toEqual({ kind: 'handled' });
    pt.pteOffsetIn = real;
    expect(fx.pte(A)).toBe(before);
    expect(page.refcount).toBe(refs);
  });
});

/** Unmaps A by hand (a raw PFN PTE, or the anonymous copy that replaced it) for the end-of-test checks. */
function zapAll(fx: ReturnType<typeof makeFixture>, vma: VmArea): void {
  const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
  const page = fx.mem.page(ptePfn(fx.pt.readEntry(ptep)));
  if (page.test('anon')) {
    page.mapcount = 0;
    fx.mm.rss[MM_ANONPAGES] -= 1;
    runSync(putPage(page));
  }
  fx.pt.writeEntry(ptep, 0n);
  vma.vmFlags &= ~VM_PFNMAP;
  runSync(fx.mm.pageTables.flushTlbPage(A));
}
