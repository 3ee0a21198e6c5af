import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { mmapSync, mprotectSync } from './sync-api.js';
import { MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';
import {
  LINUX_VMA_LOCKING,
  resolveVmaLocking,
  VMA_START_WRITE_SITES,
  VmaLockingConfigError,
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
  });

  it('fork passes the switches on to the child mm', () => {
    const { mm } = mmWithVma({ startWrite: { dupMmap: false } });
    expect(new MmStruct(mm.childConfig()).vmaLocking.startWrite.dupMmap).toBe(false);
  });
});
