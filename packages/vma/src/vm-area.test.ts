import { EffectKind, runSync, UseAfterFreeError } from '@spf/machine';
import { PAGE_COPY, PAGE_READONLY, PAGE_SHARED, PhysicalMemory, putPage } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmIds } from './mm-ids.js';
import { MmStruct } from './mm-struct.js';
import { vmGetPageProt } from './page-prot.js';
import {
  assertVmWriting,
  ShmemZeroFile,
  VmArea,
  type VmOperations,
  vmaSetPageProt,
  vmaWriteOnce,
  vmWriteBegin,
  vmWriteEnd,
} from './vm-area.js';
import { type RecordedEffect, recordEffects } from './test-support/effects.js';
import { VM_EXEC, VM_MAYREAD, VM_MAYSHARE, VM_MAYWRITE, VM_READ, VM_SHARED, VM_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;
const PRIV_RW = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE;
const SHARED_RW = PRIV_RW | VM_SHARED | VM_MAYSHARE;

function vmaOf(flags: number, opts: { pgoff?: number; ops?: VmOperations | null; file?: boolean } = {}) {
  const mm = new MmStruct();
  const file = opts.file ? new ShmemZeroFile(mm.ids, 4 * P) : null;
  return new VmArea(mm, A, A + 4 * P, flags, opts.pgoff ?? 0, file, opts.ops ?? null);
}

describe('ShmemZeroFile: the file of a shared anonymous mapping (shmem_zero_setup())', () => {
  it('shows as /dev/zero (deleted) on device 00:01 with inode numbers from get_next_ino()', () => {
    const ids = new MmIds();
    const f = new ShmemZeroFile(ids, 8 * P);
    const g = new ShmemZeroFile(ids, P);
    expect([f.path, f.devMajor, f.devMinor, f.ino, f.size]).toEqual(['/dev/zero (deleted)', 0, 1, 1, 8 * P]);
    expect(g.ino).toBe(2);
  });

  it('keeps its page cache until the last VMA reference is dropped, then puts each page once', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024, zeroPage: false });
    const f = new ShmemZeroFile(new MmIds(), 2 * P);
    const free0 = mem.freeCount;
    const p0 = mem.allocPages(0);
    const p1 = mem.allocPages(0);
    p1.refcount = 2; // also mapped somewhere: only the file's reference goes
    f.pages.set(0, p0);
    f.pages.set(1, p1);
    f.get();
    f.get();
    expect(f.refs).toBe(2);
    runSync(f.put());
    expect(f.refs).toBe(1);
    expect(f.pages.size).toBe(2);
    expect(mem.freeCount).toBe(free0 - 2);
    runSync(f.put());
    expect(f.refs).toBe(0);
    expect(f.pages.size).toBe(0);
    // p0 is freed; p1 keeps its other reference.
    expect(mem.freeCount).toBe(free0 - 1);
    expect(p1.refcount).toBe(1);
    runSync(putPage(p1));
    expect(mem.freeCount).toBe(free0);
  });
});

describe('VmArea (vm_area_struct)', () => {
  it('takes its fields, its vm_page_prot from the flags, and a number from the mm id space', () => {
    const mm = new MmStruct();
    const ops: VmOperations = {};
    const file = new ShmemZeroFile(mm.ids, P);
    const a = new VmArea(mm, A, A + 2 * P, PRIV_RW, 7, file, ops);
    const b = new VmArea(mm, A, A + P, VM_READ, 0);
    expect([a.vmStart, a.vmEnd, a.vmFlags, a.vmPgoff, a.vmFile, a.vmOps]).toEqual([
      A,
      A + 2 * P,
      PRIV_RW,
      7,
      file,
      ops,
    ]);
    expect([b.vmFile, b.vmOps]).toEqual([null, null]);
    expect(a.vmPageProt).toBe(PAGE_COPY);
    expect(b.vmPageProt).toBe(PAGE_READONLY);
    expect(b.id).toBe(a.id + 1);
    // Trace names: the struct's line, its vm_sequence and its vm_ref_count.
    expect(a.line.label).toBe(`vma#${a.id}`);
    expect((a.vmSequence as unknown as { name: string }).name).toBe(`vma#${a.id}.vm_sequence`);
    expect(a.refCount.name).toBe(`vma#${a.id}.vm_ref_count`);
    // vm_lock_seq is a field of the struct: on the VMA's line.
    expect(a.vmLockSeq.line).toBe(a.line);
    expect(a.vmSequence.peek()).toBe(0);
    expect(a.vmLockSeq.value).toBe(-1);
    expect([a.anonVma, a.anonVmaChain, a.vmPrivateData, a.detached, a.poisoned]).toEqual([
      null,
      [],
      null,
      false,
      null,
    ]);
    expect(a.toString()).toBe(`vma#${a.id}[10000000-10002000 rw-p]`);
  });

  it('a fresh VMA is not write-locked in the current mmap write section (vm_lock_seq -1)', () => {
    const v = vmaOf(PRIV_RW);
    expect(v.vmLockSeq.value).not.toBe(v.vmMm.mmLockSeq.value);
  });

  it('creates its per-VMA lock on first use, once', () => {
    const v = vmaOf(PRIV_RW);
    expect(v.hasVmLock).toBe(false);
    const l = v.vmLock;
    expect(v.hasVmLock).toBe(true);
    expect(v.vmLock).toBe(l);
    expect(l.name).toBe(`vma#${v.id}.vm_lock`);
    expect(runSync(l.downReadTrylock())).toBe(true);
    runSync(l.upRead());
  });

  it('vma_pages(), linear_page_index()', () => {
    const v = vmaOf(PRIV_RW, { pgoff: 100 });
    expect(v.pages).toBe(4);
    expect(v.linearPageIndex(A)).toBe(100);
    expect(v.linearPageIndex(A + 3 * P)).toBe(103);
  });

  it('vma_is_anonymous(): neither vm_ops nor a file', () => {
    expect(vmaOf(PRIV_RW).isAnonymous()).toBe(true);
    expect(vmaOf(PRIV_RW, { ops: {} }).isAnonymous()).toBe(false);
    expect(vmaOf(PRIV_RW, { file: true }).isAnonymous()).toBe(false);
  });

  it('is_cow_mapping(): VM_MAYWRITE without VM_SHARED', () => {
    expect(vmaOf(PRIV_RW).isCowMapping()).toBe(true);
    expect(vmaOf(VM_READ | VM_MAYREAD | VM_MAYWRITE).isCowMapping()).toBe(true);
    expect(vmaOf(VM_READ | VM_MAYREAD).isCowMapping()).toBe(false);
    expect(vmaOf(SHARED_RW).isCowMapping()).toBe(false);
    expect(vmaOf(VM_READ | VM_SHARED).isCowMapping()).toBe(false);
  });

  it('allows() an access only when every requested access right is in vm_flags', () => {
    const v = vmaOf(VM_READ | VM_EXEC | VM_MAYWRITE);
    expect(v.allows(VM_READ)).toBe(true);
    expect(v.allows(VM_READ | VM_EXEC)).toBe(true);
    expect(v.allows(VM_WRITE)).toBe(false);
    expect(v.allows(VM_READ | VM_WRITE)).toBe(false);
    // Bits other than VM_READ/VM_WRITE/VM_EXEC are not access rights.
    expect(v.allows(VM_READ | VM_SHARED)).toBe(true);
    expect(v.allows(0)).toBe(true);
  });

  it('perms() as /proc/PID/maps prints them; VM_MAYSHARE decides s/p', () => {
    expect(vmaOf(VM_READ | VM_WRITE | VM_EXEC | VM_MAYSHARE).perms()).toBe('rwxs');
    expect(vmaOf(0).perms()).toBe('---p');
    expect(vmaOf(VM_WRITE).perms()).toBe('-w-p');
    expect(vmaOf(VM_EXEC).perms()).toBe('--xp');
    expect(vmaOf(VM_READ | VM_SHARED).perms()).toBe('r--p');
  });

  it('a freed (poisoned) VMA reports any access as a use-after-free naming who freed it', () => {
    const v = vmaOf(PRIV_RW);
    expect(() => v.checkLive('find_vma')).not.toThrow();
    v.poison('__free_vma by test');
    expect(v.poisoned).toBe('__free_vma by test');
    expect(() => v.checkLive('find_vma')).toThrow(UseAfterFreeError);
    expect(() => v.checkLive('find_vma')).toThrow(`find_vma accessed freed vma#${v.id} (__free_vma by test)`);
    expect(() => runSync(vmWriteBegin(v))).toThrow(/vm_write_begin accessed freed/);
  });

  it('vma_set_page_prot(): shared writable PTEs stay read-only only when the file wants page_mkwrite', () => {
    const notify: VmOperations = {
      *pageMkwrite() {
        return 0;
      },
    };
    const v = vmaOf(SHARED_RW, { ops: notify });
    v.setPageProt();
    expect(v.vmPageProt).toBe(vmGetPageProt(VM_READ | VM_WRITE));
    expect(v.vmPageProt).not.toBe(PAGE_SHARED);
    // Without ->page_mkwrite, or private, or read-only: the plain protection_map entry.
    const plain = vmaOf(SHARED_RW, { ops: {} });
    plain.vmPageProt = 0n;
    plain.setPageProt();
    expect(plain.vmPageProt).toBe(PAGE_SHARED);
    const noOps = vmaOf(SHARED_RW);
    noOps.vmPageProt = 0n;
    noOps.setPageProt();
    expect(noOps.vmPageProt).toBe(PAGE_SHARED);
    const priv = vmaOf(PRIV_RW, { ops: notify });
    priv.vmPageProt = 0n;
    priv.setPageProt();
    expect(priv.vmPageProt).toBe(PAGE_COPY);
    const ro = vmaOf(VM_READ | VM_SHARED | VM_MAYSHARE, { ops: notify });
    ro.vmPageProt = 0n;
    ro.setPageProt();
    expect(ro.vmPageProt).toBe(PAGE_READONLY);
    // It recomputes from the current flags.
    priv.vmFlags = VM_READ;
    priv.setPageProt();
    expect(priv.vmPageProt).toBe(PAGE_READONLY);
  });
});

describe("vm_write_begin()/vm_write_end() (Dufour's vm_sequence)", () => {
  it('makes vm_sequence odd for the write section and asserts writers are inside one', () => {
    const v = vmaOf(PRIV_RW);
    expect(() => assertVmWriting(v)).toThrow(`${v} changed outside vm_write_begin/vm_write_end`);
    runSync(vmWriteBegin(v));
    expect(v.vmSequence.peek()).toBe(1);
    expect(() => assertVmWriting(v)).not.toThrow();
    runSync(vmWriteEnd(v));
    expect(v.vmSequence.peek()).toBe(2);
    expect(() => assertVmWriting(v)).toThrow(/changed outside/);
  });
});

describe('WRITE_ONCE() of one VMA field (vmaWriteOnce, vma_set_page_prot())', () => {
  /** Runs a store, recording each effect with the VMA's fields as a reader scheduled at that effect sees them. */
  function stores(v: VmArea, code: ReturnType<typeof vmaWriteOnce>) {
    const seen: RecordedEffect<[number, number, number, number, bigint]>[] = [];
    runSync(recordEffects(code, () => [v.vmStart, v.vmEnd, v.vmPgoff, v.vmFlags, v.vmPageProt], seen));
    return seen;
  }

  it('is one write of the VMA line named after the kernel field, and the value lands only after that effect', () => {
    const v = vmaOf(PRIV_RW, { pgoff: 3 });
    const prot = v.vmPageProt;
    const fields: [Parameters<typeof vmaWriteOnce>[1], number, string][] = [
      ['vmStart', A + P, 'vm_start'],
      ['vmEnd', A + 2 * P, 'vm_end'],
      ['vmPgoff', 4, 'vm_pgoff'],
      ['vmFlags', VM_READ, 'vm_flags'],
    ];
    let before: [number, number, number, number, bigint] = [A, A + 4 * P, 3, PRIV_RW, prot];
    for (const [field, value, name] of fields) {
      const seen = stores(v, vmaWriteOnce(v, field, value));
      // A reader between this store and the next sees every field as it was before it.
      expect(seen).toEqual([
        { kind: EffectKind.Write, line: v.line, label: `WRITE_ONCE(${name})`, at: before },
      ]);
      expect(v[field]).toBe(value);
      before = [v.vmStart, v.vmEnd, v.vmPgoff, v.vmFlags, v.vmPageProt];
    }
    expect(before).toEqual([A + P, A + 2 * P, 4, VM_READ, prot]);
    expect(prot).not.toBe(PAGE_SHARED);
    const seen = stores(v, vmaWriteOnce(v, 'vmPageProt', PAGE_SHARED));
    expect(seen.map((e) => e.label)).toEqual(['WRITE_ONCE(vm_page_prot)']);
    expect(v.vmPageProt).toBe(PAGE_SHARED);
  });

  it('a store of the value the field already holds is no effect at all', () => {
    const v = vmaOf(PRIV_RW, { pgoff: 3 });
    expect(stores(v, vmaWriteOnce(v, 'vmStart', A))).toEqual([]);
    expect(stores(v, vmaWriteOnce(v, 'vmPgoff', 3))).toEqual([]);
    expect(stores(v, vmaWriteOnce(v, 'vmPageProt', v.vmPageProt))).toEqual([]);
    expect([v.vmStart, v.vmPgoff]).toEqual([A, 3]);
  });

  it('vma_set_page_prot() on a published VMA stores vm_page_prot from the current vm_flags in one write', () => {
    const notify: VmOperations = {
      *pageMkwrite() {
        return 0;
      },
    };
    const v = vmaOf(PRIV_RW);
    expect(v.vmPageProt).toBe(PAGE_COPY);
    v.vmFlags = SHARED_RW;
    const seen = stores(v, vmaSetPageProt(v));
    expect(seen).toEqual([
      {
        kind: EffectKind.Write,
        line: v.line,
        label: 'WRITE_ONCE(vm_page_prot)',
        at: [A, A + 4 * P, 0, SHARED_RW, PAGE_COPY],
      },
    ]);
    expect(v.vmPageProt).toBe(PAGE_SHARED);
    // The write-notify rule of setPageProt() holds here too: read-only PTEs for page_mkwrite.
    const shared = vmaOf(SHARED_RW, { ops: notify });
    shared.vmPageProt = PAGE_SHARED;
    runSync(vmaSetPageProt(shared));
    expect(shared.vmPageProt).toBe(vmGetPageProt(VM_READ | VM_WRITE));
    // Unchanged flags: nothing to store.
    expect(stores(v, vmaSetPageProt(v))).toEqual([]);
  });
});
