import { describe, expect, it } from 'vitest';
import {
  FAULT_FLAG_ALLOW_RETRY,
  FAULT_FLAG_DEFAULT,
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_INTERRUPTIBLE,
  FAULT_FLAG_KILLABLE,
  FAULT_FLAG_MKWRITE,
  FAULT_FLAG_ORIG_PTE_VALID,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_RETRY_NOWAIT,
  FAULT_FLAG_SPECULATIVE,
  FAULT_FLAG_TRIED,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_USER,
  FAULT_FLAG_VMA_LOCK,
  FAULT_FLAG_WRITE,
  faultFlagsString,
  VM_FAULT_COMPLETED,
  VM_FAULT_DONE_COW,
  VM_FAULT_ERROR,
  VM_FAULT_FALLBACK,
  VM_FAULT_HWPOISON,
  VM_FAULT_HWPOISON_LARGE,
  VM_FAULT_LOCKED,
  VM_FAULT_MAJOR,
  VM_FAULT_NOPAGE,
  VM_FAULT_OOM,
  VM_FAULT_RETRY,
  VM_FAULT_SIGBUS,
  VM_FAULT_SIGSEGV,
  vmFaultString,
} from './fault-flags.js';

describe('enum fault_flag (include/linux/mm_types.h)', () => {
  it('has the kernel bit values, each one bit, and the speculative bit just above FAULT_FLAG_VMA_LOCK', () => {
    const flags = [
      FAULT_FLAG_WRITE,
      FAULT_FLAG_MKWRITE,
      FAULT_FLAG_ALLOW_RETRY,
      FAULT_FLAG_RETRY_NOWAIT,
      FAULT_FLAG_KILLABLE,
      FAULT_FLAG_TRIED,
      FAULT_FLAG_USER,
      FAULT_FLAG_REMOTE,
      FAULT_FLAG_INSTRUCTION,
      FAULT_FLAG_INTERRUPTIBLE,
      FAULT_FLAG_UNSHARE,
      FAULT_FLAG_ORIG_PTE_VALID,
      FAULT_FLAG_VMA_LOCK,
      FAULT_FLAG_SPECULATIVE,
    ];
    expect(flags).toEqual(flags.map((_, i) => 1 << i));
    // FAULT_FLAG_DEFAULT: what do_user_addr_fault() starts every user fault with.
    expect(FAULT_FLAG_DEFAULT).toBe(0x214);
  });

  it('faultFlagsString names each bit, lowest first, joined by |', () => {
    expect(faultFlagsString(FAULT_FLAG_DEFAULT | FAULT_FLAG_WRITE | FAULT_FLAG_USER)).toBe(
      'WRITE|ALLOW_RETRY|KILLABLE|USER|INTERRUPTIBLE',
    );
    expect(faultFlagsString(FAULT_FLAG_DEFAULT | FAULT_FLAG_TRIED | FAULT_FLAG_VMA_LOCK)).toBe(
      'ALLOW_RETRY|KILLABLE|TRIED|INTERRUPTIBLE|VMA_LOCK',
    );
    const names = Array.from({ length: 14 }, (_, i) => faultFlagsString(1 << i));
    expect(names).toEqual([
      'WRITE',
      'MKWRITE',
      'ALLOW_RETRY',
      'RETRY_NOWAIT',
      'KILLABLE',
      'TRIED',
      'USER',
      'REMOTE',
      'INSTRUCTION',
      'INTERRUPTIBLE',
      'UNSHARE',
      'ORIG_PTE_VALID',
      'VMA_LOCK',
      'SPECULATIVE',
    ]);
  });

  it('no flag prints as 0, and bits the kernel does not define print nothing', () => {
    expect(faultFlagsString(0)).toBe('0');
    expect(faultFlagsString(1 << 20)).toBe('0');
    expect(faultFlagsString((1 << 20) | FAULT_FLAG_WRITE)).toBe('WRITE');
  });
});

describe('enum vm_fault_reason', () => {
  it('has the kernel values; VM_FAULT_ERROR is the results that end a fault with an error', () => {
    expect([
      VM_FAULT_OOM,
      VM_FAULT_SIGBUS,
      VM_FAULT_MAJOR,
      VM_FAULT_HWPOISON,
      VM_FAULT_HWPOISON_LARGE,
      VM_FAULT_SIGSEGV,
      VM_FAULT_NOPAGE,
      VM_FAULT_LOCKED,
      VM_FAULT_RETRY,
      VM_FAULT_FALLBACK,
      VM_FAULT_DONE_COW,
      VM_FAULT_COMPLETED,
    ]).toEqual([0x1, 0x2, 0x4, 0x10, 0x20, 0x40, 0x100, 0x200, 0x400, 0x800, 0x1000, 0x4000]);
    expect(VM_FAULT_ERROR).toBe(0x873);
    // A major fault or a retry is not an error.
    expect(VM_FAULT_ERROR & (VM_FAULT_MAJOR | VM_FAULT_RETRY | VM_FAULT_NOPAGE | VM_FAULT_LOCKED)).toBe(0);
  });

  it('vmFaultString names the result bits in VM_FAULT_RESULT_TRACE order, or 0', () => {
    expect(vmFaultString(0)).toBe('0');
    expect(vmFaultString(VM_FAULT_RETRY)).toBe('RETRY');
    expect(vmFaultString(VM_FAULT_MAJOR | VM_FAULT_LOCKED)).toBe('MAJOR|LOCKED');
    expect(vmFaultString(VM_FAULT_ERROR)).toBe('OOM|SIGBUS|HWPOISON|HWPOISON_LARGE|SIGSEGV|FALLBACK');
    expect(vmFaultString(VM_FAULT_NOPAGE | VM_FAULT_DONE_COW | VM_FAULT_COMPLETED)).toBe(
      'NOPAGE|DONE_COW|COMPLETED',
    );
  });
});
