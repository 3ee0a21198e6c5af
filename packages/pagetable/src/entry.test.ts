import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_NX,
  _PAGE_PRESENT,
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_SOFT_DIRTY,
  _PAGE_SPECIAL,
  _PAGE_TABLE,
  _PAGE_UFFD_WP,
  _PAGE_USER,
  PAGE_NONE,
  PAGE_READONLY,
  PAGE_SHARED,
} from './entry-bits.js';
import { entryFlagNames, formatEntry, formatErrorCode } from './entry-format.js';
import { InvalidArgumentError, PhysicalAddressError } from './errors.js';
import {
  mkPte,
  pfnPte,
  pmdBad,
  pmdLeaf,
  pmdNone,
  pmdPresent,
  pteDirty,
  pteExec,
  pteMkclean,
  pteMkdirty,
  pteMkexec,
  pteMkold,
  pteMkpkey,
  pteMkspecial,
  pteMkuffdWp,
  pteMkwrite,
  pteMkyoung,
  pteModify,
  pteNone,
  ptePfn,
  ptePkey,
  ptePresent,
  pteProtnone,
  pteSame,
  pteSpecial,
  pteUffdWp,
  pteWrite,
  pteWrprotect,
  pteYoung,
  pudBad,
} from './pte.js';
import {
  isSwapPte,
  pteSwpExclusive,
  pteSwpMkexclusive,
  pteSwpMksoftDirty,
  pteSwpSoftDirty,
  pteToSwpEntry,
  SWP_OFFSET_MAX,
  swpEntry,
  swpEntryToPte,
} from './swap-entry.js';

describe('entry bits at SDM positions with Linux software bits (pgtable_types.h)', () => {
  it('places the bits where the SDM and Linux put them', () => {
    expect(_PAGE_PRESENT).toBe(1n);
    expect(_PAGE_RW).toBe(2n);
    expect(_PAGE_USER).toBe(4n);
    expect(_PAGE_ACCESSED).toBe(0x20n);
    expect(_PAGE_DIRTY).toBe(0x40n);
    expect(_PAGE_PSE).toBe(0x80n);
    expect(_PAGE_PROTNONE).toBe(0x100n);
    expect(_PAGE_SPECIAL).toBe(1n << 9n);
    expect(_PAGE_UFFD_WP).toBe(1n << 10n);
    expect(_PAGE_SOFT_DIRTY).toBe(1n << 11n);
    expect(_PAGE_NX).toBe(1n << 63n);
  });
});

describe('pte operations (include/linux/pgtable.h, arch/x86/include/asm/pgtable.h)', () => {
  const pte = pfnPte(0x1234, PAGE_READONLY);
  it('mk/test pairs', () => {
    expect(ptePfn(pte)).toBe(0x1234);
    expect(pteWrite(pte)).toBe(false);
    expect(pteWrite(pteMkwrite(pte))).toBe(true);
    expect(pteWrite(pteWrprotect(pteMkwrite(pte)))).toBe(false);
    expect(pteDirty(pteMkdirty(pte))).toBe(true);
    expect(pteMkdirty(pte) & _PAGE_SOFT_DIRTY).toBe(_PAGE_SOFT_DIRTY);
    expect(pteDirty(pteMkclean(pteMkdirty(pte)))).toBe(false);
    expect(pteYoung(pte)).toBe(true); // PAGE_READONLY has A
    expect(pteYoung(pteMkold(pte))).toBe(false);
    expect(pteYoung(pteMkyoung(pteMkold(pte)))).toBe(true);
    expect(pteSpecial(pte)).toBe(false);
    expect(pteSpecial(pteMkspecial(pte))).toBe(true);
    expect(pteExec(pte)).toBe(false);
    expect(pteExec(pteMkexec(pte))).toBe(true);
    expect(pteUffdWp(pteMkuffdWp(pteMkwrite(pte)))).toBe(true);
    expect(pteWrite(pteMkuffdWp(pteMkwrite(pte)))).toBe(false);
    expect(ptePkey(pteMkpkey(pte, 11))).toBe(11);
    expect(() => pteMkpkey(pte, 16)).toThrow(InvalidArgumentError);
    expect(pteSame(pte, pfnPte(0x1234, PAGE_READONLY))).toBe(true);
    expect(mkPte({ pfn: 0x1234 }, PAGE_READONLY)).toBe(pte);
  });
  it('pte_none ignores A and D (the KNL erratum); pte_present counts PROT_NONE', () => {
    expect(pteNone(0n)).toBe(true);
    expect(pteNone(_PAGE_ACCESSED | _PAGE_DIRTY)).toBe(true);
    expect(pteNone(pte)).toBe(false);
    const none = pfnPte(0x1234, PAGE_NONE);
    expect(ptePresent(none)).toBe(true);
    expect(pteProtnone(none)).toBe(true);
    expect(none & _PAGE_PRESENT).toBe(0n);
  });
  it('pfn_pte inverts the frame of a PROT_NONE entry (L1TF) and pte_pfn undoes it', () => {
    const none = pfnPte(0x1234, PAGE_NONE);
    expect((none >> 12n) & 0xffffn).not.toBe(0x1234n);
    expect(ptePfn(none)).toBe(0x1234);
    expect(ptePfn(pteModify(pfnPte(0x55, PAGE_SHARED), PAGE_NONE))).toBe(0x55);
  });
  it('pte_modify keeps the frame, A, D and special, and takes the new protection', () => {
    const p = pteMkspecial(pteMkdirty(pfnPte(0x77, PAGE_SHARED)));
    const m = pteModify(p, PAGE_READONLY);
    expect(ptePfn(m)).toBe(0x77);
    expect(pteWrite(m)).toBe(false);
    expect(pteDirty(m)).toBe(true);
    expect(pteSpecial(m)).toBe(true);
  });
  it('rejects frame numbers that do not fit', () => {
    expect(() => pfnPte(2 ** 40, PAGE_SHARED)).toThrow(PhysicalAddressError);
  });
  it('pmd/pud tests', () => {
    const table = 0x5000n | _PAGE_TABLE;
    expect(pmdNone(0n)).toBe(true);
    expect(pmdPresent(table)).toBe(true);
    expect(pmdBad(table)).toBe(false);
    expect(pmdBad(table | _PAGE_NX)).toBe(true);
    expect(pmdBad(0x5000n | _PAGE_PRESENT)).toBe(true);
    expect(pmdLeaf(table | _PAGE_PSE)).toBe(true);
    expect(pudBad(table)).toBe(false);
    expect(pudBad(table | _PAGE_PSE)).toBe(true);
  });
  it('property: pfn round-trips through pfn_pte for present and PROT_NONE protections', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 - 1 }), fc.boolean(), (pfn, none) => {
        expect(ptePfn(pfnPte(pfn, none ? PAGE_NONE : PAGE_SHARED))).toBe(pfn);
      }),
    );
  });
});

describe('swap entries (arch/x86/include/asm/pgtable_64.h)', () => {
  it('type in bits 63:59, offset inverted in bits 58:9', () => {
    const pte = swpEntryToPte(swpEntry(3, 0));
    expect(pte >> 59n).toBe(3n);
    expect((pte >> 9n) & ((1n << 50n) - 1n)).toBe((1n << 50n) - 1n);
    expect(pte & 0x1ffn).toBe(0n);
    expect(isSwapPte(pte)).toBe(true);
    expect(ptePresent(pte)).toBe(false);
  });
  it('property: every (type, offset) round-trips and is a swap PTE, with software bits preserved', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 31 }),
        fc.bigInt({ min: 0n, max: SWP_OFFSET_MAX }),
        (type, offset) => {
          const pte = swpEntryToPte(swpEntry(type, offset));
          expect(pteToSwpEntry(pte)).toEqual({ type, offset });
          expect(isSwapPte(pte)).toBe(true);
          const marked = pteSwpMkexclusive(pteSwpMksoftDirty(pte));
          expect(pteSwpSoftDirty(marked) && pteSwpExclusive(marked)).toBe(true);
          expect(pteToSwpEntry(marked)).toEqual({ type, offset });
        },
      ),
    );
  });
  it('rejects out-of-range fields', () => {
    expect(() => swpEntry(32, 0)).toThrow(InvalidArgumentError);
    expect(() => swpEntry(0, SWP_OFFSET_MAX + 1n)).toThrow(InvalidArgumentError);
  });
});

describe('printers', () => {
  it('names flags by level', () => {
    expect(entryFlagNames(0x8000_0000_0000_0067n | (3n << 59n), 1)).toEqual([
      'P',
      'RW',
      'US',
      'A',
      'D',
      'pkey=3',
      'XD',
    ]);
    expect(entryFlagNames(0x1081n, 2)).toEqual(['P', 'PS', 'PAT']);
    expect(entryFlagNames(0x81n, 1)).toEqual(['P', 'PAT']);
    expect(formatEntry(pfnPte(0x42, PAGE_SHARED))).toBe('PTE 0x8000000000042027 pfn=0x42 [P RW US A XD]');
    expect(formatEntry(swpEntryToPte(swpEntry(1, 5)))).toMatch(/swap\(type=1, offset=0x5\)/);
    expect(formatErrorCode(0b100111)).toBe('P|W|U|PK');
    expect(formatErrorCode(0b10000)).toBe('!P|R|S|I');
  });
});
