import { pfnPte, pteMkspecial, ptePfn, pteSpecial } from '@spf/pagetable';
import { MAP_PRIVATE, PROT_READ, PROT_WRITE, VM_PFNMAP, type VmArea, vmNormalPage } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x3000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('vm_normal_page', () => {
  it('with pte_special: the zero page is special and has no normal page; an anonymous page does', () => {
    const fx = makeFixture({ pteSpecial: true });
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    fx.touch(A + 4096, 'w');
    const vma = fx.mm.findVma(A) as VmArea;
    expect(pteSpecial(fx.pte(A))).toBe(true);
    expect(vmNormalPage(fx.env, vma, A, fx.pte(A))).toBeNull();
    expect(vmNormalPage(fx.env, vma, A + 4096, fx.pte(A + 4096))?.pfn).toBe(ptePfn(fx.pte(A + 4096)));
  });

  it('without pte_special: zero-page PTEs are not marked, and the VMA decides', () => {
    const fx = makeFixture({ pteSpecial: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    fx.touch(A, 'r');
    const vma = fx.mm.findVma(A) as VmArea;
    expect(pteSpecial(fx.pte(A))).toBe(false);
    expect(vmNormalPage(fx.env, vma, A, fx.pte(A))).toBeNull();
    // A PFN mapping: the PFN at vm_pgoff + offset is a raw remap (no page); anything else in a COW
    // mapping is a normal page (a COW copy).
    const page = fx.mem.allocPages(0);
    const pgoff = vma.vmPgoff;
    vma.vmFlags |= VM_PFNMAP;
    vma.vmPgoff = page.pfn;
    expect(vmNormalPage(fx.env, vma, A, pfnPte(page.pfn, vma.vmPageProt))).toBeNull();
    const other = fx.mem.allocPages(0);
    expect(vmNormalPage(fx.env, vma, A, pfnPte(other.pfn, vma.vmPageProt))?.pfn).toBe(other.pfn);
    // With pte_special the same remapped PFN would be special and need no VMA read at all.
    const fx2 = makeFixture({ pteSpecial: true });
    expect(vmNormalPage(fx2.env, vma, A, pteMkspecial(pfnPte(page.pfn, vma.vmPageProt)))).toBeNull();
    vma.vmFlags &= ~VM_PFNMAP;
    vma.vmPgoff = pgoff;
  });
});
