import { PhysicalMemory, pfnPte, pteMkspecial } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MmStruct } from '../mm-struct.js';
import { VmArea } from '../vm-area.js';
import { VM_MAYWRITE, VM_MIXEDMAP, VM_PFNMAP, VM_READ, VM_SHARED, VM_WRITE } from '../vm-flags.js';
import { makeMemoryEnv } from './memory-env.js';
import { isZeroPfn, vmNormalPage } from './vm-normal-page.js';

const START = 0x40_0000;

function system(pteSpecial: boolean, zeroPage = true) {
  const mem = new PhysicalMemory({ size: 1024 * 1024, zeroPage });
  const env = makeMemoryEnv({ mem, pteSpecial });
  const mm = new MmStruct();
  const vma = (flags: number, pgoff = 0) => new VmArea(mm, START, START + 16 * 4096, flags, pgoff);
  return { mem, env, vma };
}

describe('is_zero_pfn', () => {
  it('is true only for the zero page, and never when memory has none', () => {
    const { mem } = system(true);
    expect(isZeroPfn(mem, mem.zeroPfn)).toBe(true);
    expect(isZeroPfn(mem, mem.zeroPfn + 1)).toBe(false);
    const none = new PhysicalMemory({ size: 1024 * 1024, zeroPage: false });
    expect(none.zeroPfn).toBeLessThan(0);
    expect(isZeroPfn(none, none.zeroPfn)).toBe(false);
  });
});

describe('vm_normal_page', () => {
  it('with pte_special: the PTE alone decides, whatever the VMA says', () => {
    const { mem, env, vma } = system(true);
    const page = mem.allocPages(0);
    const anon = vma(VM_READ | VM_WRITE | VM_MAYWRITE);
    expect(vmNormalPage(env, anon, START, pfnPte(page.pfn, anon.vmPageProt))?.pfn).toBe(page.pfn);
    expect(vmNormalPage(env, anon, START, pteMkspecial(pfnPte(page.pfn, anon.vmPageProt)))).toBeNull();
    // A non-special PTE in a PFN map (a COW copy) is a normal page; the VMA is not read.
    const pfnmap = vma(VM_READ | VM_PFNMAP, page.pfn);
    expect(vmNormalPage(env, pfnmap, START, pfnPte(page.pfn, pfnmap.vmPageProt))?.pfn).toBe(page.pfn);
  });

  it('without pte_special: the zero page has no normal page, an ordinary page has', () => {
    const { mem, env, vma } = system(false);
    const page = mem.allocPages(0);
    const anon = vma(VM_READ | VM_WRITE | VM_MAYWRITE);
    expect(vmNormalPage(env, anon, START, pfnPte(mem.zeroPfn, anon.vmPageProt))).toBeNull();
    expect(vmNormalPage(env, anon, START + 4096, pfnPte(page.pfn, anon.vmPageProt))?.pfn).toBe(page.pfn);
    // Outside PFN maps the VMA kind does not matter: a shared or a never-writable mapping has normal pages too.
    const shared = vma(VM_READ | VM_WRITE | VM_MAYWRITE | VM_SHARED);
    expect(vmNormalPage(env, shared, START, pfnPte(page.pfn, shared.vmPageProt))?.pfn).toBe(page.pfn);
    const readonly = vma(VM_READ, page.pfn);
    expect(vmNormalPage(env, readonly, START, pfnPte(page.pfn, readonly.vmPageProt))?.pfn).toBe(page.pfn);
  });

  it('without pte_special, VM_PFNMAP: the PFN at vm_pgoff + offset is a raw remap, others are COW copies only in a COW mapping', () => {
    const { mem, env, vma } = system(false);
    const base = mem.allocPages(0).pfn;
    const copy = mem.allocPages(0);
    const cow = vma(VM_READ | VM_MAYWRITE | VM_PFNMAP, base);
    // The remapped PFN for the fifth page is base + 4, at any page of the VMA.
    expect(vmNormalPage(env, cow, START + 4 * 4096, pfnPte(base + 4, cow.vmPageProt))).toBeNull();
    expect(vmNormalPage(env, cow, START, pfnPte(base, cow.vmPageProt))).toBeNull();
    // Not the remapped PFN for this address: a COW copy in a private writable mapping.
    expect(vmNormalPage(env, cow, START + 8 * 4096, pfnPte(copy.pfn, cow.vmPageProt))?.pfn).toBe(copy.pfn);
    expect(vmNormalPage(env, cow, START, pfnPte(copy.pfn, cow.vmPageProt))?.pfn).toBe(copy.pfn);
    // A shared PFN map, or a private one that may never be written, has no COW copies.
    const shared = vma(VM_READ | VM_WRITE | VM_MAYWRITE | VM_SHARED | VM_PFNMAP, base);
    expect(vmNormalPage(env, shared, START + 8 * 4096, pfnPte(copy.pfn, shared.vmPageProt))).toBeNull();
    const readonly = vma(VM_READ | VM_PFNMAP, base);
    expect(vmNormalPage(env, readonly, START + 8 * 4096, pfnPte(copy.pfn, readonly.vmPageProt))).toBeNull();
  });

  it('without pte_special, VM_MIXEDMAP: a PFN beyond memory or the zero page has no page, a PFN in memory has', () => {
    const { mem, env, vma } = system(false);
    const page = mem.allocPages(0);
    const mixed = vma(VM_READ | VM_MIXEDMAP, page.pfn);
    expect(vmNormalPage(env, mixed, START, pfnPte(mem.frames, mixed.vmPageProt))).toBeNull();
    expect(vmNormalPage(env, mixed, START, pfnPte(mem.frames + 7, mixed.vmPageProt))).toBeNull();
    expect(vmNormalPage(env, mixed, START, pfnPte(mem.zeroPfn, mixed.vmPageProt))).toBeNull();
    // Unlike VM_PFNMAP, the PFN at vm_pgoff is an ordinary page here.
    expect(vmNormalPage(env, mixed, START, pfnPte(page.pfn, mixed.vmPageProt))?.pfn).toBe(page.pfn);
  });
});
