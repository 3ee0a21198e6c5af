import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { mmapSync } from './sync-api.js';
import {
  calcVmFlagBits,
  calcVmProtBits,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_STACK,
  MAP_SYNC,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_READ,
  PROT_SEM,
  PROT_WRITE,
  pageAlign,
  pageAligned,
  VM_ACCOUNT,
  VM_ARCH_1,
  VM_DONTCOPY,
  VM_DONTDUMP,
  VM_DONTEXPAND,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_HUGEPAGE,
  VM_HUGETLB,
  VM_IO,
  VM_LOCKED,
  VM_LOCKONFAULT,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_MIXEDMAP,
  VM_NOHUGEPAGE,
  VM_NORESERVE,
  VM_PFNMAP,
  VM_RAND_READ,
  VM_READ,
  VM_SEQ_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_SYNC,
  VM_UFFD_MISSING,
  VM_UFFD_WP,
  VM_WIPEONFORK,
  VM_WRITE,
  vmFlagsString,
} from './vm-flags.js';

/**
 * Every vm_flags bit the model has, with its mnemonic in show_smap_vma_flags() (fs/proc/task_mmu.c, Linux
 * 6.18), in bit order.
 */
const MNEMONICS: readonly [number, string][] = [
  [VM_READ, 'rd'],
  [VM_WRITE, 'wr'],
  [VM_EXEC, 'ex'],
  [VM_SHARED, 'sh'],
  [VM_MAYREAD, 'mr'],
  [VM_MAYWRITE, 'mw'],
  [VM_MAYEXEC, 'me'],
  [VM_MAYSHARE, 'ms'],
  [VM_GROWSDOWN, 'gd'],
  [VM_UFFD_MISSING, 'um'],
  [VM_PFNMAP, 'pf'],
  [VM_UFFD_WP, 'uw'],
  [VM_LOCKED, 'lo'],
  [VM_IO, 'io'],
  [VM_SEQ_READ, 'sr'],
  [VM_RAND_READ, 'rr'],
  [VM_DONTCOPY, 'dc'],
  [VM_DONTEXPAND, 'de'],
  [VM_LOCKONFAULT, 'lf'],
  [VM_ACCOUNT, 'ac'],
  [VM_NORESERVE, 'nr'],
  [VM_HUGETLB, 'ht'],
  [VM_SYNC, 'sf'],
  [VM_ARCH_1, 'ar'],
  [VM_WIPEONFORK, 'wf'],
  [VM_DONTDUMP, 'dd'],
  [VM_SOFTDIRTY, 'sd'],
  [VM_MIXEDMAP, 'mm'],
  [VM_HUGEPAGE, 'hg'],
  [VM_NOHUGEPAGE, 'nh'],
];

describe('vmFlagsString (the VmFlags line of /proc/PID/smaps)', () => {
  it('has the mnemonic of show_smap_vma_flags() for every flag of the model', () => {
    for (const [bit, name] of MNEMONICS)
      expect([bit.toString(16), vmFlagsString(bit)]).toEqual([bit.toString(16), name]);
    // The bits are distinct single bits, so the table covers each flag once.
    expect(new Set(MNEMONICS.map(([b]) => b)).size).toBe(MNEMONICS.length);
    for (const [bit] of MNEMONICS) expect(bit & (bit - 1)).toBe(0);
  });

  it('prints the set flags lowest bit first, separated by spaces; no flag prints nothing', () => {
    expect(vmFlagsString(0)).toBe('');
    const all = MNEMONICS.reduce((f, [b]) => f | b, 0);
    expect(vmFlagsString(all)).toBe(MNEMONICS.map(([, n]) => n).join(' '));
    expect(vmFlagsString(VM_NOHUGEPAGE | VM_READ | VM_LOCKONFAULT)).toBe('rd lf nh');
  });

  it("a fresh private writable anonymous mapping reads 'rd wr mr mw me ac sd', a shared one 'rd wr sh mr mw me ms sd'", () => {
    const mm = new MmStruct();
    const A = 0x7f00_0000_0000;
    const rw = PROT_READ | PROT_WRITE;
    expect(
      mmapSync(mm, { addr: A, len: PAGE_SIZE, prot: rw, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED }).ok,
    ).toBe(true);
    expect(
      mmapSync(mm, {
        addr: A + 2 * PAGE_SIZE,
        len: PAGE_SIZE,
        prot: rw,
        flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
      }).ok,
    ).toBe(true);
    expect(vmFlagsString(mm.findVma(A)?.vmFlags ?? 0)).toBe('rd wr mr mw me ac sd');
    expect(vmFlagsString(mm.findVma(A + 2 * PAGE_SIZE)?.vmFlags ?? 0)).toBe('rd wr sh mr mw me ms sd');
  });
});

describe('calc_vm_prot_bits() and calc_vm_flag_bits()', () => {
  it('PROT_READ/WRITE/EXEC become VM_READ/WRITE/EXEC; the other prot bits do not', () => {
    expect(calcVmProtBits(PROT_READ | PROT_WRITE | PROT_EXEC)).toBe(VM_READ | VM_WRITE | VM_EXEC);
    expect(calcVmProtBits(PROT_WRITE)).toBe(VM_WRITE);
    expect(calcVmProtBits(PROT_SEM | PROT_GROWSDOWN)).toBe(0);
  });

  it('MAP_GROWSDOWN, MAP_LOCKED, MAP_SYNC and MAP_STACK give VM_GROWSDOWN, VM_LOCKED, VM_SYNC and VM_NOHUGEPAGE', () => {
    expect(calcVmFlagBits(0)).toBe(0);
    expect(calcVmFlagBits(MAP_GROWSDOWN)).toBe(VM_GROWSDOWN);
    expect(calcVmFlagBits(MAP_LOCKED)).toBe(VM_LOCKED);
    expect(calcVmFlagBits(MAP_SYNC)).toBe(VM_SYNC);
    expect(calcVmFlagBits(MAP_STACK)).toBe(VM_NOHUGEPAGE);
    expect(calcVmFlagBits(MAP_GROWSDOWN | MAP_LOCKED | MAP_SYNC | MAP_STACK)).toBe(
      VM_GROWSDOWN | VM_LOCKED | VM_SYNC | VM_NOHUGEPAGE,
    );
    // The flags with no vm_flags bit of their own.
    expect(
      calcVmFlagBits(MAP_PRIVATE | MAP_SHARED | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE),
    ).toBe(0);
  });

  it('mmap(MAP_STACK) maps a VMA that smaps shows as nh (Linux 6.7+ with transparent huge pages)', () => {
    const mm = new MmStruct();
    const r = mmapSync(mm, {
      addr: 0,
      len: 8 * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
    });
    if (!r.ok) throw new Error(`mmap failed: errno ${r.errno}`);
    expect(vmFlagsString(mm.findVma(r.value)?.vmFlags ?? 0)).toBe('rd wr mr mw me ac sd nh');
  });
});

describe('page alignment', () => {
  it('pageAligned() is true for multiples of 4 KiB only', () => {
    expect([0, PAGE_SIZE, 7 * PAGE_SIZE, 2 ** 47].map(pageAligned)).toEqual([true, true, true, true]);
    expect([1, PAGE_SIZE - 1, PAGE_SIZE + 1, PAGE_SIZE / 2].map(pageAligned)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it('PAGE_ALIGN() rounds up to the next page boundary and leaves aligned lengths alone', () => {
    expect([0, 1, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 1, 3 * PAGE_SIZE].map(pageAlign)).toEqual([
      0,
      PAGE_SIZE,
      PAGE_SIZE,
      PAGE_SIZE,
      2 * PAGE_SIZE,
      3 * PAGE_SIZE,
    ]);
  });
});
