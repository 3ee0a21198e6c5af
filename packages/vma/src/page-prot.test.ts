import {
  _PAGE_ACCESSED,
  _PAGE_NX,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_RW,
  _PAGE_USER,
  PAGE_COPY,
  PAGE_COPY_EXEC,
  PAGE_NONE,
  PAGE_READONLY,
  PAGE_READONLY_EXEC,
  PAGE_SHARED,
  PAGE_SHARED_EXEC,
} from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { protectionMap, vmGetPageProt } from './page-prot.js';
import {
  VM_ACCOUNT,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './vm-flags.js';

const has = (prot: bigint, bit: bigint) => (prot & bit) !== 0n;

describe('vm_get_page_prot() and protection_map[] (arch/x86/mm/pgprot.c)', () => {
  it('is x86-64 protection_map, indexed by VM_READ|VM_WRITE|VM_EXEC|VM_SHARED', () => {
    expect(protectionMap).toEqual([
      PAGE_NONE,
      PAGE_READONLY,
      PAGE_COPY,
      PAGE_COPY,
      PAGE_READONLY_EXEC,
      PAGE_READONLY_EXEC,
      PAGE_COPY_EXEC,
      PAGE_COPY_EXEC,
      PAGE_NONE,
      PAGE_READONLY,
      PAGE_SHARED,
      PAGE_SHARED,
      PAGE_READONLY_EXEC,
      PAGE_READONLY_EXEC,
      PAGE_SHARED_EXEC,
      PAGE_SHARED_EXEC,
    ]);
  });

  it('for each of the 16 combinations: present iff some access, writable only if shared, NX without exec', () => {
    for (let i = 0; i < 16; i++) {
      const flags =
        (i & 1 ? VM_READ : 0) | (i & 2 ? VM_WRITE : 0) | (i & 4 ? VM_EXEC : 0) | (i & 8 ? VM_SHARED : 0);
      const prot = vmGetPageProt(flags);
      const access = (flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
      expect({ flags, present: has(prot, _PAGE_PRESENT), user: has(prot, _PAGE_USER) }).toEqual({
        flags,
        present: access,
        user: access,
      });
      // PROT_NONE: not present for the MMU, but marked so that the kernel knows the page is still mapped.
      expect(has(prot, _PAGE_PROTNONE)).toBe(!access);
      // A private writable mapping is read-only in the PTE until the first write copies (COW).
      expect(has(prot, _PAGE_RW)).toBe(access && (flags & VM_SHARED) !== 0 && (flags & VM_WRITE) !== 0);
      expect(has(prot, _PAGE_NX)).toBe(access && (flags & VM_EXEC) === 0);
      expect(has(prot, _PAGE_ACCESSED)).toBe(true);
    }
  });

  it('looks only at the four access bits: the VM_MAY*, locking and accounting flags change nothing', () => {
    const others =
      VM_MAYREAD |
      VM_MAYWRITE |
      VM_MAYEXEC |
      VM_MAYSHARE |
      VM_LOCKED |
      VM_ACCOUNT |
      VM_GROWSDOWN |
      VM_SOFTDIRTY;
    expect(vmGetPageProt(VM_READ | others)).toBe(PAGE_READONLY);
    expect(vmGetPageProt(VM_READ | VM_WRITE | VM_SHARED | others)).toBe(PAGE_SHARED);
    expect(vmGetPageProt(others)).toBe(PAGE_NONE);
  });
});
