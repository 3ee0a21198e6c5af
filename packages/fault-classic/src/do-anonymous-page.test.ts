import { runSync } from '@spf/machine';
import { ptePfn, pteDirty, pteMkold, pteSpecial, pteWrite } from '@spf/pagetable';
import { MM_ANONPAGES, PROT_READ, PROT_WRITE, pteAllocMap, VM_SHARED, type VmArea } from '@spf/vma';
import { doAnonymousPage, vmfPteChanged } from './do-anonymous-page.js';
import { FAULT_FLAG_ORIG_PTE_VALID, FAULT_FLAG_WRITE, VM_FAULT_SIGBUS } from './fault-flags.js';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;
let fx = makeFixture();

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_anonymous_page', () => {
  it('maps the shared zero page read-only and special on a first-touch read', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 4, PROT_READ | PROT_WRITE);
    const r = fx.touch(A + 100, 'r');
    expect(r).toEqual({ ok: true, value: 0, faults: 1 });
    const pte = fx.pte(A);
    expect(ptePfn(pte)).toBe(fx.mem.zeroPfn);
    expect(pteSpecial(pte)).toBe(true);
    expect(pteWrite(pte)).toBe(false);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
    expect(fx.task.minflt).toBe(1);
    expect(fx.env.vmstat.pgfault).toBe(1);
  });

  it('without pte_special the zero-page PTE is an ordinary read-only PTE (vm_normal_page reads the VMA instead)', () => {
    fx = makeFixture({ pteSpecial: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toEqual({ ok: true, value: 0, faults: 1 });
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(pteSpecial(fx.pte(A))).toBe(false);
    expect(pteWrite(fx.pte(A))).toBe(false);
  });

  it('allocates a zeroed, writable page on a first-touch read when the zero page is off', () => {
    fx = makeFixture({ zeroPage: false });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0 });
    const pte = fx.pte(A);
    expect(pteWrite(pte)).toBe(true);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    // The page is writable at once: a store does not fault again.
    expect(fx.touch(A, 'w')).toMatchObject({ ok: true, faults: 0 });
    expect(fx.task.minflt).toBe(1);
  });

  it('maps a private zeroed page, dirty and writable, on a first-touch write', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    expect(fx.touch(A + 4096 + 7, 'w', 0x33)).toMatchObject({ ok: true, faults: 1 });
    const pte = fx.pte(A + 4096);
    expect(pteWrite(pte)).toBe(true);
    expect(pteDirty(pte)).toBe(true);
    const page = fx.mem.page(ptePfn(pte));
    expect(page.test('anon')).toBe(true);
    expect(page.mapcount).toBe(1);
    expect(page.refcount).toBe(1);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.touch(A + 4096 + 7, 'r')).toMatchObject({ ok: true, value: 0x33, faults: 0 });
    expect(fx.touch(A + 4096 + 8, 'r')).toMatchObject({ ok: true, value: 0, faults: 0 });
    // The other page is untouched.
    expect(fx.pte(A)).toBe(0n);
  });

  it('gives the VMA its anon_vma at its first anonymous page (anon_vma_prepare), and later pages join the same one', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 4, PROT_READ | PROT_WRITE);
    const vma = fx.mm.findVma(A)!;
    expect(vma.anonVma).toBeNull();
    // A read maps the zero page: no page of the VMA's own, so no anon_vma yet.
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, faults: 1 });
    expect(vma.anonVma).toBeNull();
    expect(fx.touch(A + 4096, 'w', 1)).toMatchObject({ ok: true, faults: 1 });
    const av = vma.anonVma;
    expect(av).not.toBeNull();
    const first = fx.mem.page(ptePfn(fx.pte(A + 4096)));
    // The page's rmap points at the VMA's anon_vma (rmap walks find the page through it).
    expect(first.mapping).toBe(av);
    expect(fx.touch(A + 3 * 4096, 'w', 2)).toMatchObject({ ok: true, faults: 1 });
    expect(vma.anonVma).toBe(av);
    expect(fx.mem.page(ptePfn(fx.pte(A + 3 * 4096))).mapping).toBe(av);
  });

  it('maps a read-only VMA page read-only, and reports OOM when memory is exhausted', () => {
    fx = makeFixture({ zeroPage: false, memory: 64 * 4096 });
    fx.mmapAnon(A, 128, PROT_READ);
    let oom = false;
    for (let i = 0; i < 128 && !oom; i++) {
      const r = fx.touch(A + i * 4096, 'r');
      if (!('ok' in r)) {
        expect(r).toEqual({ kind: 'oom', address: A + i * 4096 });
        oom = true;
      } else expect(pteWrite(fx.pte(A + i * 4096))).toBe(false);
    }
    expect(oom).toBe(true);
    // A failed fault is counted in pgfault, not in the task's minflt.
    expect(fx.env.vmstat.pgfault).toBe(fx.task.minflt + 1);
  });
});

describe('do_anonymous_page against a changed page table', () => {
  it('vmf_pte_changed: with ORIG_PTE_VALID it compares with orig_pte, without it it asks whether the PTE is still none', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    fx.touch(A, 'w', 1);
    const ptep = runSync(pteAllocMap(fx.env, fx.mm, A));
    const present = fx.pte(A);
    const vmf = fx.vmfAt(A, FAULT_FLAG_ORIG_PTE_VALID);
    vmf.origPte = present;
    expect(runSync(vmfPteChanged(vmf, ptep))).toBe(false);
    vmf.origPte = pteMkold(present);
    expect(runSync(vmfPteChanged(vmf, ptep))).toBe(true);
    const none = fx.vmfAt(A + 4096, 0);
    const nonePtep = runSync(pteAllocMap(fx.env, fx.mm, A + 4096));
    expect(runSync(vmfPteChanged(none, nonePtep))).toBe(false);
    none.origPte = present; // ignored without ORIG_PTE_VALID
    expect(runSync(vmfPteChanged(none, nonePtep))).toBe(false);
    expect(runSync(vmfPteChanged(fx.vmfAt(A, 0), ptep))).toBe(true);
  });

  it('a fault that finds the PTE already installed by another CPU keeps that PTE and frees its own page', () => {
    for (const flags of [0, FAULT_FLAG_WRITE]) {
      fx = makeFixture({ zeroPage: true });
      fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
      fx.touch(A, 'w', 0x44);
      const winner = fx.pte(A);
      const free = fx.mem.freeCount;
      // This fault read the PTE as none before the other CPU's fault installed it (no ORIG_PTE_VALID).
      expect(runSync(doAnonymousPage(fx.vmfAt(A, flags)))).toBe(0);
      expect(fx.pte(A)).toBe(winner);
      expect(fx.mem.freeCount).toBe(free);
      expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
      expect(fx.mem.page(ptePfn(winner)).mapcount).toBe(1);
      expect(fx.touch(A, 'r')).toMatchObject({ value: 0x44, faults: 0 });
    }
  });

  it('a PTE table that vanished before the lock was taken: nothing is mapped, the new page is freed, no lock is held', () => {
    for (const flags of [0, FAULT_FLAG_WRITE]) {
      fx = makeFixture();
      fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
      const vmf = fx.vmfAt(A, flags);
      const pt = fx.mm.pgd;
      const real = pt.pteOffsetIn.bind(pt);
      pt.pteOffsetIn = () => {
        return null; // as if the table had been freed (retract_page_tables) after pte_alloc
      };
      expect(runSync(doAnonymousPage(vmf))).toBe(0);
      pt.pteOffsetIn = real;
      expect(vmf.ptl).toBeNull();
      expect(fx.pte(A)).toBe(0n);
      // Only page tables were allocated: the data page went back.
      const tables = pt.tables[1] + pt.tables[2] + pt.tables[3];
      expect(fx.bootFree - fx.mem.freeCount).toBe(tables);
      expect(fx.mm.rss[MM_ANONPAGES]).toBe(0);
      expect(fx.touch(A, 'w', 3)).toMatchObject({ ok: true, faults: 1 });
    }
  });

  it('a shared VMA without vm_ops cannot be faulted as anonymous memory: SIGBUS, nothing allocated', () => {
    fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    const vma = fx.mm.findVma(A) as VmArea;
    const free = fx.mem.freeCount;
    vma.vmFlags |= VM_SHARED;
    const vmf = fx.vmfAt(A, FAULT_FLAG_WRITE);
    const tablesFree = fx.mem.freeCount;
    expect(runSync(doAnonymousPage(vmf))).toBe(VM_FAULT_SIGBUS);
    vma.vmFlags &= ~VM_SHARED;
    expect(fx.mem.freeCount).toBe(tablesFree);
    expect(free - tablesFree).toBeGreaterThan(0); // vmfAt built the upper tables; no PTE table, no page
    expect(fx.pt.tables[1]).toBe(0);
    expect(fx.pte(A)).toBe(0n);
  });
});
