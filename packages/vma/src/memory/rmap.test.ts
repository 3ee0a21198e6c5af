import { EffectKind, runSync } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { anonVmaPrepare } from '../anon-vma.js';
import { makeSystem } from '../test-support/system.js';
import { VmArea } from '../vm-area.js';
import { VM_MAYWRITE, VM_READ, VM_WRITE } from '../vm-flags.js';
import { folioAddFileRmap, folioAddNewAnonRmap, folioRemoveRmap } from './rmap.js';

describe('rmap', () => {
  it('folio_add_new_anon_rmap: the page becomes the anon_vma page at the VMA linear index, mapped once', () => {
    const { mem, mm } = makeSystem();
    const vma = new VmArea(mm, 0x40_0000, 0x50_0000, VM_READ | VM_WRITE | VM_MAYWRITE, 0x77);
    runSync(anonVmaPrepare(vma));
    expect(vma.anonVma).not.toBeNull();
    const page = mem.allocPages(0);
    const code = folioAddNewAnonRmap(page, vma, 0x40_3000);
    const first = code.next();
    expect(first.value).toMatchObject({
      kind: EffectKind.Write,
      line: page.line,
      label: 'folio_add_new_anon_rmap',
    });
    expect(code.next().done).toBe(true);
    expect(page.mapping).toBe(vma.anonVma);
    expect(page.index).toBe(0x77 + 3);
    expect(page.mapcount).toBe(1);
    expect(page.test('anon')).toBe(true);
    expect(page.test('swapbacked')).toBe(true);
    expect(page.test('uptodate')).toBe(true);
  });

  it('folio_add_file_rmap_pte / folio_remove_rmap_pte count the PTEs mapping a page-cache page', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024 });
    const page = mem.allocPages(0);
    runSync(folioAddFileRmap(page));
    runSync(folioAddFileRmap(page));
    expect(page.mapcount).toBe(2);
    runSync(folioRemoveRmap(page));
    expect(page.mapcount).toBe(1);
    expect(page.test('anon')).toBe(false);
  });
});
