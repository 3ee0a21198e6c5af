import { type Kernel, runSync } from '@spf/machine';
import { OutOfMemoryError } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { ForkOutOfMemoryError } from './dup-mmap.js';
import { Errno } from './errno.js';
import { MADV_DONTFORK, MADV_WIPEONFORK } from './madvise.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmIds } from './mm-ids.js';
import { MmStruct } from './mm-struct.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { forkSync, madviseSync, mmapSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import type { VmArea } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_LOCKED,
  VM_LOCKONFAULT,
  VM_PFNMAP,
} from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function map(mm: MmStruct, addr: number, pages: number, prot = RW, flags = PRIV): void {
  expect(mmapSync(mm, { addr, len: pages * P, prot, flags })).toEqual({ ok: true, value: addr });
}
const vmaAt = (mm: MmStruct, addr: number): VmArea => {
  const v = mm.findVma(addr);
  if (v === null || v.vmStart > addr) throw new Error(`no VMA at ${addr.toString(16)}`);
  return v;
};
const present = (mm: MmStruct) => [...mm.pageTables.presentPtes(0, 2 ** 47)].map((p) => (p.addr - A) / P);
const acct = (mm: MmStruct) => ({
  mapCount: mm.mapCount,
  totalVm: mm.totalVm,
  dataVm: mm.dataVm,
  stackVm: mm.stackVm,
  execVm: mm.execVm,
  lockedVm: mm.lockedVm,
});

/** Page tables whose copyPageRange calls are recorded (the VMAs dup_mmap copied PTEs for). */
function recordingFactory(mem: ReturnType<typeof makeSystem>['mem'], copied: number[]) {
  return (child: MmStruct) => {
    const ops = new PagetableOps(child, { mem });
    const copy = ops.copyPageRange.bind(ops);
    ops.copyPageRange = function* (dst: VmArea, src: VmArea): Kernel<void> {
      copied.push((src.vmStart - A) / P);
      yield* copy(dst, src);
    };
    return ops;
  };
}

describe('dup_mmap: what the child gets', () => {
  it('every VMA but VM_DONTCOPY ones, with the same layout, accounting, break and id space', () => {
    const ids = new MmIds();
    const { mm } = makeSystem({ ids, startBrk: 0x555555559000 });
    map(mm, A, 2);
    map(mm, A + 4 * P, 1, PROT_READ | PROT_EXEC);
    map(mm, A + 8 * P, 3, RW, PRIV | MAP_GROWSDOWN);
    map(mm, A + 16 * P, 2);
    expect(madviseSync(mm, A + 16 * P, 2 * P, MADV_DONTFORK)).toEqual({ ok: true, value: 0 });
    mm.brk = 0x55555555a000;
    const child = forkSync(mm);
    expect(child.ids).toBe(ids);
    expect(child).not.toBe(mm);
    expect(procMaps(child)).toBe(
      procMaps(mm)
        .split('\n')
        .filter((l) => !l.startsWith((A + 16 * P).toString(16)))
        .join('\n'),
    );
    expect(child.mapCount).toBe(3);
    expect(acct(child)).toEqual({ mapCount: 3, totalVm: 6, dataVm: 2, stackVm: 3, execVm: 1, lockedVm: 0 });
    expect(acct(mm)).toEqual({ mapCount: 4, totalVm: 8, dataVm: 4, stackVm: 3, execVm: 1, lockedVm: 0 });
    expect([child.brk, child.startBrk]).toEqual([0x55555555a000, 0x555555559000]);
    // Each child VMA is a new object of the child's mm.
    for (const v of child.vmas()) {
      expect(v.vmMm).toBe(child);
      expect(vmaAt(mm, v.vmStart)).not.toBe(v);
    }
    checkMmInvariants([mm, child]);
  });

  it('drops VM_LOCKED and VM_LOCKONFAULT in the child, keeping every other flag', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    const pv = vmaAt(mm, A);
    pv.vmFlags |= VM_LOCKED | VM_LOCKONFAULT;
    const child = forkSync(mm);
    const cv = vmaAt(child, A);
    expect(cv.vmFlags).toBe(pv.vmFlags & ~(VM_LOCKED | VM_LOCKONFAULT));
    expect(child.lockedVm).toBe(0);
    expect(child.totalVm).toBe(2);
    expect(pv.vmFlags & VM_LOCKED).toBe(VM_LOCKED);
  });

  it('copies the PTEs of VMAs with anonymous pages, COW in both, and not of unfaulted ones', () => {
    const { mm, mem } = makeSystem();
    map(mm, A, 2);
    map(mm, A + 4 * P, 2);
    touch(mm, A, P);
    const copied: number[] = [];
    const child = forkSync(mm, recordingFactory(mem, copied));
    expect(copied).toEqual([0]);
    expect(present(child)).toEqual([0]);
    for (const m of [mm, child]) {
      expect([...m.pageTables.presentPtes(A, A + P)].map((p) => p.writable)).toEqual([false]);
    }
    // The child's VMA has an anon_vma of its own whose parent is the parent VMA's.
    expect(vmaAt(child, A).anonVma?.parent).toBe(vmaAt(mm, A).anonVma);
    expect(vmaAt(child, A + 4 * P).anonVma).toBeNull();
    checkMmInvariants([mm, child]);
  });

  it('copies the PTEs of a VM_PFNMAP VMA even without an anon_vma', () => {
    const { mm, mem } = makeSystem();
    map(mm, A, 1);
    vmaAt(mm, A).vmFlags |= VM_PFNMAP;
    const copied: number[] = [];
    forkSync(mm, recordingFactory(mem, copied));
    expect(copied).toEqual([0]);
  });

  it('gives a VM_WIPEONFORK VMA neither an anon_vma nor PTEs: the child sees zero-filled memory', () => {
    const { mm, mem } = makeSystem();
    map(mm, A, 2);
    map(mm, A + 4 * P, 1);
    touch(mm, A, 2 * P);
    touch(mm, A + 4 * P);
    expect(madviseSync(mm, A, 2 * P, MADV_WIPEONFORK)).toEqual({ ok: true, value: 0 });
    const copied: number[] = [];
    const child = forkSync(mm, recordingFactory(mem, copied));
    expect(copied).toEqual([4]);
    const cv = vmaAt(child, A);
    expect(cv.anonVma).toBeNull();
    expect(cv.anonVmaChain).toEqual([]);
    expect(present(child)).toEqual([4]);
    expect(present(mm)).toEqual([0, 1, 4]);
    // The parent's pages stay writable: nothing was shared.
    expect([...mm.pageTables.presentPtes(A, A + 2 * P)].map((p) => p.writable)).toEqual([true, true]);
    expect(vmaAt(mm, A).anonVma?.numChildren).toBe(0);
    checkMmInvariants([mm, child]);
  });

  it('takes a file reference and calls vm_ops->open for each copied file VMA', () => {
    const { mm } = makeSystem();
    map(mm, A, 2, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const pv = vmaAt(mm, A);
    const file = pv.vmFile as unknown as { refs: number };
    expect(file.refs).toBe(1);
    const opened: VmArea[] = [];
    pv.vmOps = { ...pv.vmOps, open: (v) => opened.push(v) };
    const child = forkSync(mm);
    expect(file.refs).toBe(2);
    expect(opened).toEqual([vmaAt(child, A)]);
    expect(vmaAt(child, A).vmFile).toBe(pv.vmFile);
    expect(munmapSync(child, A, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(file.refs).toBe(1);
  });
});

describe('dup_mmap: optional hooks and page tables', () => {
  it('copies a file VMA whose file has no get_file hook and whose vm_ops have no open', () => {
    const { mm } = makeSystem();
    map(mm, A, 1);
    const pv = vmaAt(mm, A);
    pv.vmFile = { path: '/x', devMajor: 8, devMinor: 1, ino: 12 };
    pv.vmOps = {};
    const child = forkSync(mm);
    expect(vmaAt(child, A).vmFile).toBe(pv.vmFile);
    expect(vmaAt(child, A).vmOps).toBe(pv.vmOps);
  });

  it('forks an mm without page tables (NoPageTables has no fork factory) into one without', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const child = forkSync(mm);
    expect(child.pageTables.pgd).toBeNull();
    expect(vmaAt(child, A).vmStart).toBe(A);
  });
});

describe('dup_mmap: locking and TLBs', () => {
  it("write-locks every parent VMA, releases both mmap locks and flushes the parent's TLBs once", () => {
    const { mm } = makeSystem();
    map(mm, A, 1);
    map(mm, A + 4 * P, 1);
    touch(mm, A);
    let flushes = 0;
    const flush = mm.pageTables.flushTlbMm.bind(mm.pageTables);
    mm.pageTables.flushTlbMm = function* () {
      flushes++;
      yield* flush();
    };
    const seq = mm.mmLockSeq.value;
    for (const v of mm.vmas()) expect(v.vmLockSeq.value).not.toBe(seq);
    const child = forkSync(mm);
    expect(flushes).toBe(1);
    // vma_start_write() marked both with the sequence of that write-locked section, which has ended.
    for (const v of mm.vmas()) expect(v.vmLockSeq.value).toBe(seq);
    expect(mm.mmLockSeq.value).toBe(seq + 1);
    // Neither mmap lock is still held (runSync would throw on a blocked lock); mm_seq is even again.
    map(mm, A + 8 * P, 1);
    map(child, A + 8 * P, 1);
    expect(runSync(mm.mmSeq.rawReadSeqcount()) % 2).toBe(0);
    expect(runSync(child.mmSeq.rawReadSeqcount()) % 2).toBe(0);
  });
});

describe('dup_mmap: the page directory cannot be allocated (mm_alloc_pgd)', () => {
  it('throws ForkOutOfMemoryError (ENOMEM) before touching the parent', () => {
    const { mm } = makeSystem();
    map(mm, A, 1);
    touch(mm, A);
    const before = { maps: procMaps(mm), seq: mm.mmLockSeq.value, ...acct(mm) };
    const oom = new OutOfMemoryError('no frame for the pgd', 0);
    let thrown: unknown = null;
    try {
      forkSync(mm, () => {
        throw oom;
      });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ForkOutOfMemoryError);
    const e = thrown as ForkOutOfMemoryError;
    expect(e.errno).toBe(Errno.ENOMEM);
    expect(e.name).toBe('ForkOutOfMemoryError');
    expect(e.allocationError).toBe(oom);
    expect(e.message).toBe(`fork: no memory for the page directory of ${mm}'s child`);
    expect({ maps: procMaps(mm), seq: mm.mmLockSeq.value, ...acct(mm) }).toEqual(before);
    map(mm, A + 4 * P, 1); // the mmap lock is free
  });

  it('lets any other error of the page-table constructor through unchanged', () => {
    const { mm } = makeSystem();
    const bug = new TypeError('bad config');
    expect(() =>
      forkSync(mm, () => {
        throw bug;
      }),
    ).toThrow(bug);
    map(mm, A, 1);
  });

  it('names the copy failure in the error it throws', () => {
    const { mm, mem } = makeSystem();
    map(mm, A, 1);
    touch(mm, A);
    const oom = new OutOfMemoryError('no frame', 0);
    const failing = (child: MmStruct) => {
      const ops = new PagetableOps(child, { mem });
      ops.copyPageRange = function* () {
        yield* [];
        throw oom;
      };
      return ops;
    };
    let flushes = 0;
    const flush = mm.pageTables.flushTlbMm.bind(mm.pageTables);
    mm.pageTables.flushTlbMm = function* () {
      flushes++;
      yield* flush();
    };
    let thrown: unknown = null;
    try {
      forkSync(mm, failing);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ForkOutOfMemoryError);
    expect((thrown as ForkOutOfMemoryError).allocationError).toBe(oom);
    expect((thrown as Error).message).toBe(
      `fork: out of memory copying the page tables of ${mm} (no frame); the child was torn down`,
    );
    expect(flushes).toBe(1);
    map(mm, A + 4 * P, 1);
  });
});
