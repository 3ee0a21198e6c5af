import { type Kernel, kassert, runSync } from '@spf/machine';
import { _PAGE_DIRTY, mkPte, PhysicalMemory, pteMkwrite } from '@spf/pagetable';
import { anonVmaPrepare } from '../anon-vma.js';
import { type MmConfig, MmStruct } from '../mm-struct.js';
import { addMmCounter, mmCounter } from '../memory/mm-counter.js';
import { pteAllocMap } from '../memory/page-table-alloc.js';
import { ptlockPtr } from '../memory/pte-lock.js';
import { PagetableOps } from '../pagetable-backed-ops.js';
import { VM_SHARED, VM_WRITE } from '../vm-flags.js';

export { pageStates } from '../mm-invariants.js';

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
  const pt = mm.pgd;
  const page4k = addr - (addr % 4096);
  kassert(!(vma.vmFlags & VM_SHARED), 'testFault only handles private anonymous memory');
  yield* anonVmaPrepare(vma);
  const ptep = yield* pteAllocMap(ops.env, mm, page4k);
  const ptl = ptlockPtr(pt.mem, Math.floor(ptep / 4096));
  yield* ptl.lock();
  if ((yield* pt.ptepGet(ptep)) !== 0n) {
    yield* ptl.unlock();
    return true;
  }
  const page = pt.mem.allocPages(0);
  page.set('anon');
  page.mapping = vma.anonVma;
  page.index = vma.linearPageIndex(page4k);
  page.mapcount = 1;
  let pte = mkPte(page, vma.vmPageProt);
  if (vma.vmFlags & VM_WRITE) pte = pteMkwrite(pte) | _PAGE_DIRTY;
  yield* pt.setPteAt(page4k, ptep, pte);
  yield* addMmCounter(mm, mmCounter(page), 1);
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
