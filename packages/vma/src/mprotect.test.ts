import { describe, expect, it, vi } from 'vitest';
import { runSync } from '@spf/machine';
import { _PAGE_NX, _PAGE_RW } from '@spf/pagetable';
import { Errno } from './errno.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import type { MmapFile } from './mmap.js';
import { doMprotect, sysMprotect } from './mprotect.js';
import { OvercommitPolicy } from './overcommit.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mprotectSync } from './sync-api.js';
import { withWriteLock } from './test-support/mmap-lock.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  VM_ACCOUNT,
} from './vm-flags.js';
import { vmaIsWriteLocked } from './vma-lock.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const OK = { ok: true, value: 0 };
const PROT_NONE_ = 0;
const err = (errno: number) => ({ ok: false, errno });

function map(mm: MmStruct, addr: number, pages: number, prot = RW, flags = PRIV) {
  const r = mmapSync(mm, { addr, len: pages * P, prot, flags });
  expect(r).toEqual({ ok: true, value: addr });
}

/** What a refused call must leave unchanged. */
const state = (mm: MmStruct) => ({
  maps: procMaps(mm),
  committed: mm.committed,
  totalVm: mm.totalVm,
  dataVm: mm.dataVm,
  execVm: mm.execVm,
  stackVm: mm.stackVm,
});

function mmWithRam(pages: number): MmStruct {
  const holder: { mm: MmStruct | null } = { mm: null };
  const overcommit = new OvercommitPolicy({
    mode: 'guess',
    totalRamPages: pages,
    committedPages: () => holder.mm?.committed ?? 0,
  });
  holder.mm = new MmStruct({ overcommit });
  return holder.mm;
}

describe('do_mprotect_pkey: argument checks (nothing changes on failure)', () => {
  it.each([
    ['unaligned start', A + 1, P, PROT_READ, Errno.EINVAL],
    ['negative start', -P, P, PROT_READ, Errno.EINVAL],
    ['fractional len', A, 1.5, PROT_READ, Errno.EINVAL],
    ['negative len', A, -P, PROT_READ, Errno.EINVAL],
    ['non-integer prot', A, P, 1.5, Errno.EINVAL],
    ['unknown prot bit 0x10', A, P, PROT_READ | 0x10, Errno.EINVAL],
    ['prot bit 32 (unsigned long high half)', A, P, PROT_READ + 2 ** 32, Errno.EINVAL],
    ['negative prot (all high bits set)', A, P, -1, Errno.EINVAL],
    ['PROT_GROWSDOWN|PROT_GROWSUP together', A, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP, Errno.EINVAL],
    ['PROT_GROWSUP (no VM_GROWSUP on x86)', A, P, PROT_READ | PROT_GROWSUP, Errno.EINVAL],
    ['PROT_GROWSDOWN on a VMA without VM_GROWSDOWN', A + P, P, PROT_READ | PROT_GROWSDOWN, Errno.EINVAL],
    ['the largest len from a hole', A - P, 2 ** 53 - A, PROT_READ, Errno.ENOMEM],
    ['start in a hole below a VMA', A - P, 2 * P, PROT_READ, Errno.ENOMEM],
    ['range entirely above the last VMA', A + 8 * P, P, PROT_READ, Errno.ENOMEM],
    ['range entirely in the hole before a VMA', A - 2 * P, P, PROT_READ, Errno.ENOMEM],
  ])('%s fails and changes nothing', (_name, start, len, prot, errno) => {
    const mm = new MmStruct();
    map(mm, A, 4);
    const before = state(mm);
    expect(mprotectSync(mm, start, len, prot)).toEqual(err(errno));
    expect(state(mm)).toEqual(before);
  });

  it('a zero length succeeds without looking for a VMA; an unaligned start is still EINVAL', () => {
    const mm = new MmStruct();
    expect(mprotectSync(mm, A, 0, PROT_READ)).toEqual(OK);
    expect(mprotectSync(mm, A + 1, 0, PROT_READ)).toEqual(err(Errno.EINVAL));
    expect(mprotectSync(mm, A, 0, 0x10)).toEqual(OK);
  });

  it('rounds len up to whole pages and accepts PROT_SEM', () => {
    const mm = new MmStruct();
    map(mm, A, 4);
    expect(mprotectSync(mm, A, 1, PROT_READ | PROT_SEM)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      '100000000000-100000001000 r--p 00000000 00:00 0 \n100000001000-100000004000 rw-p 00000000 00:00 0 \n',
    );
    checkMmInvariants([mm]);
  });

  it('the prot argument is an unsigned long: bits above 31 are refused, bit 31 alone is an unknown bit', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    expect(mprotectSync(mm, A, P, 2 ** 32 - 1)).toEqual(err(Errno.EINVAL));
    expect(mprotectSync(mm, A, P, 2 ** 32)).toEqual(err(Errno.EINVAL));
    expect(mprotectSync(mm, A, P, PROT_READ | PROT_EXEC)).toEqual(OK);
    expect(procMaps(mm)).toBe('100000000000-100000001000 r-xp 00000000 00:00 0 \n');
  });
});

describe('do_mprotect_pkey: walking the VMAs', () => {
  it('changes one whole VMA in place, keeping it a single VMA', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    const v = mm.findVma(A);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ)).toEqual(OK);
    expect(mm.mapCount).toBe(1);
    expect(mm.findVma(A)).toBe(v);
    expect(procMaps(mm)).toBe('100000000000-100000002000 r--p 00000000 00:00 0 \n');
  });

  it('the same protection again is a no-op that keeps the VMA and counters', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    const before = state(mm);
    expect(mprotectSync(mm, A, P, RW)).toEqual(OK);
    expect(state(mm)).toEqual(before);
    expect(mm.mapCount).toBe(1);
  });

  it('spans adjacent VMAs and merges them back when they become equal', () => {
    const mm = new MmStruct();
    map(mm, A, 2, RW);
    map(mm, A + 2 * P, 2, PROT_READ);
    map(mm, A + 4 * P, 2, RW);
    expect(mm.mapCount).toBe(3);
    expect(mprotectSync(mm, A + P, 4 * P, PROT_READ)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      [
        '100000000000-100000001000 rw-p 00000000 00:00 0 ',
        '100000001000-100000005000 r--p 00000000 00:00 0 ',
        '100000005000-100000006000 rw-p 00000000 00:00 0 ',
        '',
      ].join('\n'),
    );
    expect(mprotectSync(mm, A, 6 * P, RW)).toEqual(OK);
    expect(procMaps(mm)).toBe('100000000000-100000006000 rw-p 00000000 00:00 0 \n');
    checkMmInvariants([mm]);
  });

  it('a hole inside the range: the VMAs before it are changed, then ENOMEM (as Linux)', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    map(mm, A + 3 * P, 2);
    expect(mprotectSync(mm, A, 5 * P, PROT_READ)).toEqual(err(Errno.ENOMEM));
    expect(procMaps(mm)).toBe(
      '100000000000-100000002000 r--p 00000000 00:00 0 \n100000003000-100000005000 rw-p 00000000 00:00 0 \n',
    );
  });

  it('a range running past the last VMA: the VMA is changed, then ENOMEM', () => {
    const mm = new MmStruct();
    map(mm, A, 2);
    expect(mprotectSync(mm, A + P, 2 * P, PROT_READ)).toEqual(err(Errno.ENOMEM));
    expect(procMaps(mm)).toBe(
      '100000000000-100000001000 rw-p 00000000 00:00 0 \n100000001000-100000002000 r--p 00000000 00:00 0 \n',
    );
  });

  it('ends exactly at a VMA end followed by another VMA: only the range changes, no error', () => {
    const mm = new MmStruct();
    map(mm, A, 2, RW);
    map(mm, A + 2 * P, 2, PROT_READ);
    expect(mprotectSync(mm, A, 2 * P, PROT_EXEC | PROT_READ)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      '100000000000-100000002000 r-xp 00000000 00:00 0 \n100000002000-100000004000 r--p 00000000 00:00 0 \n',
    );
  });

  it('PROT_GROWSDOWN extends the change down to the start of a VM_GROWSDOWN VMA', () => {
    const mm = new MmStruct();
    map(mm, A, 4, RW, PRIV | MAP_GROWSDOWN);
    expect(mprotectSync(mm, A + 2 * P, P, PROT_READ | PROT_GROWSDOWN)).toEqual(OK);
    const maps = procMaps(mm).split('\n');
    expect(maps[0]).toMatch(/^100000000000-100000003000 r--p/);
    expect(maps[1]).toMatch(/^100000003000-100000004000 rw-p/);
  });

  it('a VMA whose VM_MAYWRITE is clear (read-only file opened shared) refuses PROT_WRITE with EACCES', () => {
    const mm = new MmStruct();
    const file: MmapFile = {
      file: { path: '/etc/passwd', devMajor: 8, devMinor: 1, ino: 42 },
      ops: {},
      writable: false,
    };
    map(mm, A, 1, RW);
    const r = mmapSync(mm, { addr: A + P, len: P, prot: PROT_READ, flags: MAP_SHARED | MAP_FIXED, file });
    expect(r).toEqual({ ok: true, value: A + P });
    // The anonymous VMA before it is changed first, as in Linux; the file VMA is refused.
    expect(mprotectSync(mm, A, 2 * P, RW | PROT_EXEC)).toEqual(err(Errno.EACCES));
    const maps = procMaps(mm).split('\n');
    expect(maps[0]).toMatch(/^100000000000-100000001000 rwxp/);
    expect(maps[1]).toMatch(/^100000001000-100000002000 r--s/);
    // PROT_EXEC alone is allowed (VM_MAYEXEC is set).
    expect(mprotectSync(mm, A + P, P, PROT_READ | PROT_EXEC)).toEqual(OK);
    expect(procMaps(mm).split('\n')[1]).toMatch(/^100000001000-100000002000 r-xs/);
  });
});

describe('mprotect_fixup: commit charge and vm_stat_account', () => {
  it('charges private memory turning writable once, and keeps the charge when it turns read-only again', () => {
    const mm = new MmStruct();
    map(mm, A, 4, PROT_READ);
    expect(mm.committed).toBe(0);
    expect(mprotectSync(mm, A, 4 * P, RW)).toEqual(OK);
    expect(mm.committed).toBe(4);
    expect((mm.findVma(A)?.vmFlags ?? 0) & VM_ACCOUNT).toBeTruthy();
    expect(mm.dataVm).toBe(4);
    // An anonymous VMA with pages (anon_vma) keeps VM_ACCOUNT; without, it is dropped (uncharged).
    expect(mprotectSync(mm, A, 4 * P, PROT_READ)).toEqual(OK);
    expect(mm.committed).toBe(0);
    expect((mm.findVma(A)?.vmFlags ?? 0) & VM_ACCOUNT).toBe(0);
    expect(mm.dataVm).toBe(0);
    expect(mm.totalVm).toBe(4);
  });

  it('does not charge shared or MAP_NORESERVE memory turning writable', () => {
    const mm = new MmStruct();
    map(mm, A, 2, PROT_READ, PRIV | MAP_NORESERVE);
    map(mm, A + 4 * P, 2, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    const c = mm.committed;
    expect(mprotectSync(mm, A, 2 * P, RW)).toEqual(OK);
    expect(mprotectSync(mm, A + 4 * P, 2 * P, RW)).toEqual(OK);
    expect(mm.committed).toBe(c);
  });

  it('moves pages between exec_vm and data_vm with the protection', () => {
    const mm = new MmStruct();
    map(mm, A, 3, RW);
    expect([mm.dataVm, mm.execVm, mm.totalVm]).toEqual([3, 0, 3]);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ | PROT_EXEC)).toEqual(OK);
    expect([mm.dataVm, mm.execVm, mm.totalVm]).toEqual([1, 2, 3]);
    // The read-only part had no pages (no anon_vma): its charge is dropped with VM_ACCOUNT.
    expect(mm.committed).toBe(1);
  });

  it('refuses (ENOMEM) making more private memory writable than RAM allows, changing nothing', () => {
    const mm = mmWithRam(8);
    map(mm, A, 9, PROT_READ);
    const before = state(mm);
    expect(mprotectSync(mm, A, 9 * P, RW)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    expect(mprotectSync(mm, A, 8 * P, RW)).toEqual(OK);
    expect(mm.committed).toBe(8);
  });

  it('doMprotect is the unlocked body: sysMprotect is what takes the lock', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    expect(
      runSync(
        (function* () {
          yield* mm.mmapWriteLock();
          const r = yield* doMprotect(mm, A, P, PROT_READ);
          yield* mm.mmapWriteUnlock();
          return r;
        })(),
      ),
    ).toEqual(OK);
    expect(procMaps(mm)).toBe('100000000000-100000001000 r--p 00000000 00:00 0 \n');
  });
});

describe('mprotect: limits and paths the first tests left open', () => {
  it('a negative prot is refused even when its low 32 bits are valid; PROT_NONE (0) is accepted', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    expect(mprotectSync(mm, A, P, PROT_READ - 2 ** 32)).toEqual(err(Errno.EINVAL));
    expect(procMaps(mm)).toBe('100000000000-100000001000 rw-p 00000000 00:00 0 \n');
    expect(mprotectSync(mm, A, P, 0)).toEqual(OK);
    expect(procMaps(mm)).toBe('100000000000-100000001000 ---p 00000000 00:00 0 \n');
  });

  it('PROT_GROWSDOWN|PROT_GROWSUP is EINVAL even on a VM_GROWSDOWN VMA', () => {
    const mm = new MmStruct();
    map(mm, A, 2, RW, PRIV | MAP_GROWSDOWN);
    const before = state(mm);
    expect(mprotectSync(mm, A + P, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)).toEqual(err(Errno.EINVAL));
    expect(state(mm)).toEqual(before);
  });

  it('PROT_GROWSDOWN on a range in the hole below a VM_GROWSDOWN VMA is ENOMEM and changes nothing', () => {
    const mm = new MmStruct();
    map(mm, A, 2, RW, PRIV | MAP_GROWSDOWN);
    const before = state(mm);
    expect(mprotectSync(mm, A - P, P, PROT_READ | PROT_GROWSDOWN)).toEqual(err(Errno.ENOMEM));
    expect(mprotectSync(mm, A - 2 * P, P, PROT_READ | PROT_GROWSDOWN)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
  });

  it('merges with the previous VMA when the range starts at a VMA start, and not when it starts inside', () => {
    const mm = new MmStruct();
    map(mm, A, 1, PROT_READ);
    map(mm, A + P, 3, RW);
    expect(mprotectSync(mm, A + P, P, PROT_READ)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      '100000000000-100000002000 r--p 00000000 00:00 0 \n100000002000-100000004000 rw-p 00000000 00:00 0 \n',
    );
    expect(mprotectSync(mm, A + 3 * P, P, PROT_READ)).toEqual(OK);
    expect(procMaps(mm)).toBe(
      [
        '100000000000-100000002000 r--p 00000000 00:00 0 ',
        '100000002000-100000003000 rw-p 00000000 00:00 0 ',
        '100000003000-100000004000 r--p 00000000 00:00 0 ',
        '',
      ].join('\n'),
    );
    expect(mm.mapCount).toBe(3);
    checkMmInvariants([mm]);
  });

  it('at max_map_count, a split is ENOMEM and nothing changes (also for a later VMA of the range)', () => {
    const mm = new MmStruct({ maxMapCount: 2 });
    map(mm, A, 2, PROT_READ);
    map(mm, A + 2 * P, 3, RW);
    const before = state(mm);
    expect(mprotectSync(mm, A + 3 * P, P, PROT_READ)).toEqual(err(Errno.ENOMEM));
    expect(state(mm)).toEqual(before);
    // A shared VMA is changed first; the private one after it cannot merge with it and its split fails.
    const mm2 = new MmStruct({ maxMapCount: 2 });
    map(mm2, A, 2, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
    map(mm2, A + 2 * P, 3, PROT_READ);
    expect(mprotectSync(mm2, A, 3 * P, RW)).toEqual(err(Errno.ENOMEM));
    const maps = procMaps(mm2).split('\n');
    expect(maps[0]).toMatch(/^100000000000-100000002000 rw-s/);
    expect(maps[1]).toBe('100000002000-100000005000 r--p 00000000 00:00 0 ');
  });

  it('rewrites the present PTEs with the new protection (vma_set_page_prot before change_protection)', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    expect((mm.pgd.leaf(A)?.entry ?? 0n) & _PAGE_RW).not.toBe(0n);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ)).toEqual(OK);
    expect((mm.pgd.leaf(A)?.entry ?? 0n) & _PAGE_RW).toBe(0n);
    expect((mm.pgd.leaf(A + P)?.entry ?? 0n) & _PAGE_RW).toBe(0n);
    // Private writable and read-only share a page protection (COW); exec changes it: NX goes.
    expect((mm.pgd.leaf(A)?.entry ?? 0n) & _PAGE_NX).not.toBe(0n);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ | PROT_EXEC)).toEqual(OK);
    expect((mm.pgd.leaf(A)?.entry ?? 0n) & _PAGE_NX).toBe(0n);
    expect((mm.findVma(A)?.vmPageProt ?? _PAGE_NX) & _PAGE_NX).toBe(0n);
  });

  it("write-locks the VMA at vma_start_write()'s mprotect site; switched off, a whole-VMA change leaves it unlocked", () => {
    for (const on of [true, false]) {
      const { mm } = makeSystem({ vmaLocking: { startWrite: { mprotect: on } } });
      map(mm, A, 2);
      const vma = mm.findVma(A);
      // Checked before mmap_write_unlock(), whose vma_end_write_all() ends every VMA write lock. The whole
      // VMA changes in place: no split or merge (vma_prepare's site) touches it.
      const locked = withWriteLock(mm, function* () {
        expect(yield* doMprotect(mm, A, 2 * P, PROT_READ)).toEqual(OK);
        return vma !== null && vmaIsWriteLocked(vma);
      });
      expect(locked, `mprotect site ${on ? 'on' : 'off'}`).toBe(on);
      expect(mm.findVma(A)).toBe(vma);
      expect(vma?.perms()).toBe('r--p');
    }
  });

  it("change_protection() and its TLB flush run inside the VMA's vm_sequence section, after the new flags and vm_page_prot (SPF v12)", () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A, 2 * P);
    const vma = mm.findVma(A);
    if (vma === null) throw new Error('no VMA');
    const seq = vma.vmSequence.peek();
    const calls: [string, number, string, bigint][] = [];
    const ops = mm.pageTables;
    for (const name of ['changeProtection', 'tlbFinishMmu'] as const) {
      const original = ops[name].bind(ops) as (...a: unknown[]) => ReturnType<typeof ops.tlbFinishMmu>;
      vi.spyOn(ops, name).mockImplementation((...args: unknown[]) => {
        calls.push([name, vma.vmSequence.peek() - seq, vma.perms(), vma.vmPageProt & _PAGE_NX]);
        return original(...args) as never;
      });
    }
    expect(mprotectSync(mm, A, 2 * P, PROT_READ | PROT_EXEC)).toEqual(OK);
    expect(calls).toEqual([
      ['changeProtection', 1, 'r-xp', 0n],
      ['tlbFinishMmu', 1, 'r-xp', 0n],
    ]);
    expect(vma.vmSequence.peek()).toBe(seq + 2);
    expect((mm.pgd.leaf(A)?.entry ?? _PAGE_NX) & _PAGE_NX).toBe(0n);
  });

  it('keeps the charge of memory that has pages (anon_vma) or is a file when it turns read-only', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A);
    expect(mprotectSync(mm, A, 2 * P, PROT_READ)).toEqual(OK);
    expect(mm.committed).toBe(2);
    expect((mm.findVma(A)?.vmFlags ?? 0) & VM_ACCOUNT).toBeTruthy();
    const file: MmapFile = { file: { path: '/data', devMajor: 8, devMinor: 1, ino: 7 }, ops: {} };
    const r = mmapSync(mm, { addr: A + 8 * P, len: 2 * P, prot: RW, flags: MAP_PRIVATE | MAP_FIXED, file });
    expect(r.ok).toBe(true);
    expect(mm.committed).toBe(4);
    expect(mprotectSync(mm, A + 8 * P, 2 * P, PROT_READ)).toEqual(OK);
    expect(mm.committed).toBe(4);
    // A read-only private mapping that was never charged is not uncharged either.
    map(mm, A + 16 * P, 1, PROT_READ);
    expect(mprotectSync(mm, A + 16 * P, P, PROT_NONE_)).toEqual(OK);
    expect(mm.committed).toBe(4);
  });

  it('sysMprotect takes and releases the mmap lock around the change', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const r = runSync(
      (function* () {
        const first = yield* sysMprotect(mm, A, P, PROT_READ);
        // The lock was released: a second call (and a writer) can take it again.
        const second = yield* sysMprotect(mm, A, P, 0);
        yield* mm.mmapWriteLock();
        yield* mm.mmapWriteUnlock();
        return [first, second];
      })(),
    );
    expect(r).toEqual([OK, OK]);
    expect(procMaps(mm)).toBe('100000000000-100000001000 ---p 00000000 00:00 0 \n');
    expect(sysMprotect(mm, A + 1, P, 0).next().done).toBe(false);
  });
});
