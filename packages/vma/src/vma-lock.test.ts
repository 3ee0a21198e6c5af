import { cpuRelax, Machine, runSync, UseAfterFreeError } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { mmapSync, mprotectSync } from './sync-api.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';
import {
  LINUX_VMA_LOCKING,
  resolveVmaLocking,
  VMA_START_WRITE_SITES,
  VmaLockingConfigError,
  vmaEndRead,
  vmaIsWriteLocked,
  vmaStartRead,
  vmaStartWrite,
} from './vma-lock.js';

const A = 0x1000_0000;

function mmWithVma(vmaLocking?: Parameters<typeof resolveVmaLocking>[0]) {
  const mm = new MmStruct({ vmaLocking });
  const r = mmapSync(mm, {
    addr: A,
    len: 4 * 4096,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  expect(r.ok).toBe(true);
  const vma = mm.vmaLookup(A);
  if (vma === null) throw new Error('no vma');
  return { mm, vma };
}

describe('per-VMA lock switches of an mm (MmConfig.vmaLocking)', () => {
  it("defaults to Linux's: every vma_start_write() site on, vma_end_write_all() before the unlock", () => {
    const { mm } = mmWithVma();
    expect(mm.vmaLocking).toBe(LINUX_VMA_LOCKING);
    expect(Object.values(mm.vmaLocking.startWrite).every((v) => v)).toBe(true);
    expect(Object.keys(mm.vmaLocking.startWrite)).toEqual(Object.keys(VMA_START_WRITE_SITES));
    expect(mm.vmaLocking.endWriteAll).toBe('before-unlock');
  });

  it('a site switched off leaves the VMA unlocked; others and unnamed calls still lock it', () => {
    const { mm, vma } = mmWithVma({ startWrite: { mprotect: false } });
    runSync(mm.mmapWriteLock());
    runSync(vmaStartWrite(vma, 'mprotect'));
    expect(vmaIsWriteLocked(vma)).toBe(false);
    runSync(vmaStartWrite(vma, 'munmap'));
    expect(vmaIsWriteLocked(vma)).toBe(true);
    runSync(mm.mmapWriteUnlock());
    expect(vmaIsWriteLocked(vma)).toBe(false);
  });

  it('mprotect write-locks the VMA by default and not with its site off (a reader could then take it)', () => {
    for (const mprotect of [true, false]) {
      const { mm, vma } = mmWithVma({ startWrite: { mprotect } });
      // mmap_write_unlock() is where the lock ends: look at it from inside the syscall's write section.
      const seqBefore = mm.mmLockSeq.value;
      expect(mprotectSync(mm, A, 4 * 4096, PROT_READ).ok).toBe(true);
      expect(mm.mmLockSeq.value).toBe(seqBefore + 1);
      expect(vma.vmLockSeq.value === seqBefore).toBe(mprotect);
    }
  });

  it("vma_end_write_all() after up_write() ('after-unlock') still ends the section's write locks", () => {
    const { mm, vma } = mmWithVma({ endWriteAll: 'after-unlock' });
    runSync(mm.mmapWriteLock());
    runSync(vmaStartWrite(vma));
    expect(runSync(vmaStartRead(vma))).toBe(false);
    runSync(mm.mmapWriteUnlock());
    expect(mm.mmapLock.isLocked()).toBe(false);
    expect(runSync(vmaStartRead(vma))).toBe(true);
    runSync(vmaEndRead(vma));
  });

  it('vma_start_read() without its re-check takes a VMA write-locked after the early-out looked', () => {
    const { mm, vma } = mmWithVma();
    runSync(mm.mmapWriteLock());
    runSync(vmaStartWrite(vma));
    // The early-out alone would refuse; skipping it, only the re-check does.
    expect(runSync(vmaStartRead(vma, { earlyOut: false, trylock: true, recheck: true }))).toBe(false);
    expect(runSync(vmaStartRead(vma, { earlyOut: false, trylock: true, recheck: false }))).toBe(true);
    runSync(vma.vmLock.upRead());
    runSync(mm.mmapWriteUnlock());
  });

  it('runs replacement writer paths (vmaLocking.paths) at the sites left on, and at mmap_write_unlock()', () => {
    const calls: string[] = [];
    const { mm, vma } = mmWithVma({
      startWrite: { mprotect: false },
      paths: {
        *vmaStartWrite(v, site) {
          calls.push(`start ${v.vmStart.toString(16)} ${site ?? '-'}`);
          yield* v.vmLockSeq.store(v.vmMm.mmLockSeq.value);
        },
        *vmaEndWriteAll(m) {
          calls.push('end');
          yield* m.mmLockSeq.update((x) => x + 1);
        },
      },
    });
    calls.length = 0; // mmap's own section
    runSync(mm.mmapWriteLock());
    runSync(vmaStartWrite(vma, 'mprotect')); // switched off: the replacement is not called
    runSync(vmaStartWrite(vma, 'munmap'));
    expect(vmaIsWriteLocked(vma)).toBe(true);
    runSync(mm.mmapWriteUnlock());
    expect(vmaIsWriteLocked(vma)).toBe(false);
    expect(calls).toEqual(['start 10000000 munmap', 'end']);
    // Fork's child inherits them.
    expect(new MmStruct(mm.childConfig()).vmaLocking.paths).toBe(mm.vmaLocking.paths);
  });

  it('refuses writer paths that are not functions or not known', () => {
    expect(() => resolveVmaLocking({ paths: { vmaStartWrite: 3 } as never })).toThrow(/generator function/);
    expect(() => resolveVmaLocking({ paths: { vmaStartRead() {} } as never })).toThrow(
      /vmaStartWrite and vmaEndWriteAll/,
    );
  });

  it('refuses unknown sites, non-boolean switches and unknown orders, naming the valid ones', () => {
    expect(() => resolveVmaLocking({ startWrite: { mmap: false } as never })).toThrow(VmaLockingConfigError);
    expect(() => resolveVmaLocking({ startWrite: { mmap: false } as never })).toThrow(/vmaPrepare/);
    expect(() => resolveVmaLocking({ startWrite: { munmap: 'no' as never } })).toThrow(/true or false/);
    expect(() => resolveVmaLocking({ endWriteAll: 'later' as never })).toThrow(/before-unlock/);
    // The error says which sites exist, each named.
    expect(() => resolveVmaLocking({ startWrite: { mmap: false } as never })).toThrow(
      `vmaLocking.startWrite.mmap: no such vma_start_write() site; the sites are ${Object.keys(VMA_START_WRITE_SITES).join(', ')}`,
    );
    let err: unknown;
    try {
      resolveVmaLocking({ endWriteAll: 'later' as never });
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe('VmaLockingConfigError');
  });

  it('refuses writer paths that are not an object, and accepts a path left undefined', () => {
    expect(() => resolveVmaLocking({ paths: 3 as never })).toThrow(
      'vmaLocking.paths must be an object with vmaStartWrite and/or vmaEndWriteAll, got 3',
    );
    expect(() => resolveVmaLocking({ paths: 3 as never })).toThrow(VmaLockingConfigError);
    const locking = resolveVmaLocking({ paths: { vmaStartWrite: undefined } });
    expect(locking.paths).toEqual({ vmaStartWrite: undefined });
  });

  it('fork passes the switches on to the child mm', () => {
    const { mm } = mmWithVma({ startWrite: { dupMmap: false } });
    expect(new MmStruct(mm.childConfig()).vmaLocking.startWrite.dupMmap).toBe(false);
  });
});

describe('vma_start_write() and vma_start_read() (Linux 6.4)', () => {
  it('vma_start_write() returns only after a reader that holds the VMA lock has left (vma_end_read())', () => {
    const { mm, vma } = mmWithVma();
    const log: string[] = [];
    let readerIn = false;
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 'reader', function* () {
      expect(yield* vmaStartRead(vma)).toBe(true);
      readerIn = true;
      // Stay until the writer got the lock, or long enough for it to be asleep.
      for (let i = 0; i < 200 && log.length === 0; i++) yield* cpuRelax('read section');
      log.push('reader out');
      yield* vmaEndRead(vma);
    });
    m.spawn(1, 'writer', function* () {
      while (!readerIn) yield* cpuRelax('wait for the reader');
      yield* mm.mmapWriteLock();
      yield* vmaStartWrite(vma);
      log.push('writer locked');
      yield* mm.mmapWriteUnlock();
    });
    expect(m.run().failure).toBeNull();
    expect(log).toEqual(['reader out', 'writer locked']);
    expect(vma.vmLock.isLocked()).toBe(false);
  });

  it('vma_end_read() releases the read lock', () => {
    const { vma } = mmWithVma();
    expect(runSync(vmaStartRead(vma))).toBe(true);
    expect(vma.vmLock.readers()).toBe(1);
    runSync(vmaEndRead(vma));
    expect(vma.vmLock.isLocked()).toBe(false);
  });

  it('a VMA already write-locked in this section is not locked again (no wait for readers)', () => {
    const { mm, vma } = mmWithVma();
    const log: string[] = [];
    let marked = false;
    let readerIn = false;
    const m = new Machine({ cpus: 2 });
    m.spawn(0, 'reader', function* () {
      while (!marked) yield* cpuRelax('wait for the mark');
      // A reader without the early-out and the re-check takes the marked VMA's lock.
      expect(yield* vmaStartRead(vma, { earlyOut: false, trylock: true, recheck: false })).toBe(true);
      readerIn = true;
      for (let i = 0; i < 20; i++) yield* vma.vmLockSeq.load();
      log.push('reader out');
      yield* vmaEndRead(vma);
    });
    m.spawn(1, 'writer', function* () {
      yield* mm.mmapWriteLock();
      yield* vmaStartWrite(vma);
      marked = true;
      while (!readerIn) yield* cpuRelax('wait for the reader');
      yield* vmaStartWrite(vma);
      log.push('writer again');
      yield* mm.mmapWriteUnlock();
    });
    expect(m.run().failure).toBeNull();
    expect(log).toEqual(['writer again', 'reader out']);
  });

  it("vma_start_read()'s early-out refuses a marked VMA without touching its lock", () => {
    const { mm, vma } = mmWithVma();
    // mmap's own marks happened before any lock was made: the VMA has no lock object yet.
    runSync(mm.mmapWriteLock());
    runSync(vmaStartWrite(vma));
    expect(vma.hasVmLock).toBe(false);
    expect(runSync(vmaStartRead(vma))).toBe(false);
    expect(vma.hasVmLock).toBe(false);
    runSync(mm.mmapWriteUnlock());
    expect(runSync(vmaStartRead(vma))).toBe(true);
    expect(vma.hasVmLock).toBe(true);
    runSync(vmaEndRead(vma));
  });

  it('vma_start_read() fails at once while a writer holds the lock; with down_read() it would sleep', () => {
    for (const trylock of [true, false]) {
      const { vma } = mmWithVma();
      const log: string[] = [];
      let held = false;
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 'lock holder', function* () {
        yield* vma.vmLock.downWrite();
        held = true;
        // Hold the lock until the reader has given up, or long enough for it to be asleep.
        for (let i = 0; i < 200 && log.length === 0; i++) yield* cpuRelax('hold vm_lock');
        log.push('writer out');
        yield* vma.vmLock.upWrite();
      });
      m.spawn(1, 'reader', function* () {
        while (!held) yield* cpuRelax('wait for the writer');
        const ok = yield* vmaStartRead(vma, { earlyOut: true, trylock, recheck: true });
        log.push(`reader ${ok}`);
        if (ok) yield* vmaEndRead(vma);
      });
      expect(m.run().failure).toBeNull();
      expect(log).toEqual(trylock ? ['reader false', 'writer out'] : ['writer out', 'reader true']);
    }
  });

  it('vma_start_read() on a freed VMA is a use-after-free naming vma_start_read', () => {
    const { vma } = mmWithVma();
    vma.poison('test');
    expect(() => runSync(vmaStartRead(vma))).toThrow(UseAfterFreeError);
    expect(() => runSync(vmaStartRead(vma))).toThrow(/vma_start_read accessed freed/);
  });
});
