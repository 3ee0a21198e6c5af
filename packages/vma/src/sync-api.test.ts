import { Rcu } from '@spf/locks';
import { Machine, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MADV_DONTFORK } from './madvise.js';
import { MmStruct } from './mm-struct.js';
import { doMunmap } from './munmap.js';
import {
  brkSync,
  forkSync,
  madviseSync,
  mmapSync,
  mprotectSync,
  mremapSync,
  munmapSync,
} from './sync-api.js';
import { withWriteLock } from './test-support/mmap-lock.js';
import { makeSystem, touch } from './test-support/system.js';
import type { VmArea } from './vm-area.js';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** How the mmap lock was taken, as the sequence counts show: a write section bumps both. */
const seqs = (mm: MmStruct) => [runSync(mm.mmSeq.rawReadSeqcount()), mm.mmLockSeq.value];
/** The lock is free for writing (runSync throws on a lock it would have to wait for). */
function lockIsFree(mm: MmStruct): void {
  runSync(mm.mmapWriteLock());
  runSync(mm.mmapWriteUnlock());
}

describe('the synchronous syscalls', () => {
  it('return what the syscall returns and take the mmap lock for writing', () => {
    const mm = new MmStruct({ startBrk: 0x555555559000 });
    let [seq, lockSeq] = seqs(mm);
    const step = () => {
      const [s, l] = seqs(mm);
      expect([s, l]).toEqual([seq + 2, lockSeq + 1]);
      [seq, lockSeq] = [s, l];
      lockIsFree(mm);
      [seq, lockSeq] = seqs(mm);
    };
    expect(mmapSync(mm, { addr: A, len: 4 * P, prot: RW, flags: FLAGS })).toEqual({ ok: true, value: A });
    step();
    expect(mprotectSync(mm, A, P, PROT_READ)).toEqual({ ok: true, value: 0 });
    step();
    expect(mremapSync(mm, A + 3 * P, P, 2 * P, 0)).toEqual({ ok: true, value: A + 3 * P });
    step();
    expect(munmapSync(mm, A, P)).toEqual({ ok: true, value: 0 });
    step();
    expect(brkSync(mm, 0x555555559000 + P)).toBe(0x555555559000 + P);
    step();
    expect(madviseSync(mm, A + P, P, MADV_DONTFORK)).toEqual({ ok: true, value: 0 });
    step();
    expect(munmapSync(mm, A + 1, P)).toEqual({ ok: false, errno: 22 });
    step();
  });

  it('madvise takes the lock for reading for advice that does not change vm_flags', () => {
    const { mm } = makeSystem();
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    touch(mm, A, 2 * P);
    const before = seqs(mm);
    expect(madviseSync(mm, A, 2 * P, MADV_DONTNEED)).toEqual({ ok: true, value: 0 });
    expect(seqs(mm)).toEqual(before);
    expect([...mm.pageTables.presentPtes(A, A + 2 * P)]).toEqual([]);
    lockIsFree(mm);
  });

  it('release the lock when the syscall throws', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    const vma = mm.findVma(A) as VmArea;
    vma.vmOps = {
      maySplit() {
        throw new Error('may_split exploded');
      },
    };
    expect(() => munmapSync(mm, A, P)).toThrow('may_split exploded');
    lockIsFree(mm);
    const reader = new MmStruct();
    expect(mmapSync(reader, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    (reader.findVma(A) as VmArea).vmOps = {
      maySplit() {
        throw new Error('may_split exploded');
      },
    };
    expect(() => mprotectSync(reader, A, P, PROT_READ)).toThrow('may_split exploded');
    lockIsFree(reader);
  });

  it('end with a grace period on an mm with its own RCU, so removed VMAs are freed', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    const vma = mm.findVma(A) as VmArea;
    expect(munmapSync(mm, A, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(vma.poisoned).not.toBeNull();
    // fork too: the parent's replaced tree nodes are reclaimed by then.
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    const child = forkSync(mm);
    expect(child.findVma(A)?.vmStart).toBe(A);
    lockIsFree(mm);
    lockIsFree(child);
  });

  it('leave the grace period to the machine for an mm that shares a machine RCU', () => {
    const m = new Machine({ cpus: 1 });
    const mm = new MmStruct({ rcu: new Rcu(m) });
    expect(mm.ownsSyncRcu).toBe(false);
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    const vma = mm.findVma(A) as VmArea;
    expect(munmapSync(mm, A, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(vma.poisoned).toBeNull();
    forkSync(mm);
    expect(vma.poisoned).toBeNull();
  });

  it('forkSync ends with a grace period too: what earlier code freed under RCU is reclaimed', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS }).ok).toBe(true);
    const vma = mm.findVma(A) as VmArea;
    // An unmap without the wrapper's grace period leaves the VMA waiting for one.
    expect(withWriteLock(mm, () => doMunmap(mm, A, 2 * P))).toEqual({ ok: true, value: 0 });
    expect(vma.poisoned).toBeNull();
    forkSync(mm);
    expect(vma.poisoned).not.toBeNull();
  });
});
