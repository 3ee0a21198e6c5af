import { type Kernel, kassert, runSync } from '@spf/machine';
import { _PAGE_DIRTY, mkPte, type Page, PhysicalMemory, pteMkwrite } from '@spf/pagetable';
import { anonVmaPrepare } from '../anon-vma.js';
import type { PageStateReader } from '../mm-invariants.js';
import { type MmConfig, MmStruct } from '../mm-struct.js';
import { mmCounterOf, PagetableOps, pteLockptr } from '../pagetable-backed-ops.js';
import { VM_SHARED, VM_WRITE } from '../vm-flags.js';

/** Reads mapcounts and refcounts of @spf/pagetable pages, for the invariant checker's page checks. */
export const pageStates: PageStateReader = {
  mapcount: (p) => (p as Page).mapcount,
  refcount: (p) => (p as Page).refcount,
};

/** A small system for tests: physical memory and an mm on real page tables. */
export function makeSystem(config: MmConfig = {}): { mem: PhysicalMemory; mm: MmStruct } {
  const mem = new PhysicalMemory({ size: 64 * 1024 * 1024, zeroPage: false });
  const mm = new MmStruct({ ...config, pageTables: PagetableOps.factory({ mem }) });
  return { mem, mm };
}

/**
 * A minimal anonymous fault for tests (the real handler lives in @spf/fault-classic): gives the VMA an
 * anon_vma, allocates a zeroed page and maps it, writable if the VMA is private-writable and the access
 * is a write (or always for a writable VMA, like a kernel without the zero page).
 */
export function* testFault(mm: MmStruct, addr: number): Kernel<boolean> {
  const vma = mm.vmaLookup(addr);
  if (vma === null) return false;
  const ops = mm.pageTables as PagetableOps;
  const page4k = addr - (addr % 4096);
  kassert(!(vma.vmFlags & VM_SHARED), 'testFault only handles private anonymous memory');
  yield* anonVmaPrepare(vma);
  const pgdp = ops.pt.pgdOffset(page4k);
  const p4dp = (yield* ops.pt.p4dAlloc(pgdp, page4k)) as number;
  const pudp = (yield* ops.pt.pudAlloc(p4dp, page4k)) as number;
  const pmdp = (yield* ops.pt.pmdAlloc(pudp, page4k)) as number;
  const ptep = (yield* ops.pt.pteAllocMap(pmdp, page4k)) as number;
  const ptl = pteLockptr(ops.mem, ptep);
  yield* ptl.lock();
  if ((yield* ops.pt.ptepGet(ptep)) !== 0n) {
    yield* ptl.unlock();
    return true;
  }
  const page = ops.mem.allocPages(0);
  page.set('anon');
  page.mapping = vma.anonVma;
  page.index = vma.linearPageIndex(page4k);
  page.mapcount = 1;
  let pte = mkPte(page, vma.vmPageProt);
  if (vma.vmFlags & VM_WRITE) pte = pteMkwrite(pte) | _PAGE_DIRTY;
  yield* ops.pt.setPteAt(page4k, ptep, pte);
  yield* mm.addMmCounter(mmCounterOf(vma, page), 1);
  yield* ptl.unlock();
  return true;
}

/** Synchronous {@link testFault} of every page in [addr, addr+len). */
export function touch(mm: MmStruct, addr: number, len = 4096): void {
  for (let a = addr; a < addr + len; a += 4096) {
    const ok = runSync(
      (function* () {
        yield* mm.mmapReadLock();
        const r = yield* testFault(mm, a);
        yield* mm.mmapReadUnlock();
        return r;
      })(),
    );
    kassert(ok, `touch: no VMA at 0x${a.toString(16)}`);
  }
}
