import {
  classicFaultHandler,
  type FaultEnv,
  makeFaultEnv,
  TaskFaultCounters,
  type UserFault,
  VM_FAULT_RETRY,
} from '@spf/fault-classic';
import { defaultCostModel, runSync } from '@spf/machine';
import { Mmu, PF_USER, PF_WRITE, PhysicalMemory, ptePfn } from '@spf/pagetable';
import {
  anonVmaPrepare,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  type MmConfig,
  MmStruct,
  mmInvariantProblems,
  mmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
  type VmArea,
  vmWriteBegin,
  vmWriteEnd,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';
import { DUFOUR_CHECKS } from './dufour-checks.js';
import { type DufourSpfHandler, type DufourSpfPaths, dufourSpf } from './dufour-spf.js';
import { handleSpeculativeFault } from './handle-speculative-fault.js';
import { findVmaRcu } from './find-vma-rcu.js';
import { vmaHasChanged } from './vma-has-changed.js';
import type { SpeculativeFaultState } from './speculative-fault-state.js';
import { makeDufourCounters } from './dufour-counters.js';

const A = 0x1000_0000;
const P = 4096;

function world(opts: { pteSpecial?: boolean; freePgtablesUnderPtl?: boolean; mm?: MmConfig } = {}) {
  const mem = new PhysicalMemory({ size: 8 * 1024 * 1024, zeroPage: true });
  const env: FaultEnv = makeFaultEnv({
    mem,
    cost: defaultCostModel,
    pteSpecial: opts.pteSpecial,
    freePgtablesUnderPtl: opts.freePgtablesUnderPtl,
  });
  const mmu = new Mmu(mem, { cpus: 1 });
  const newMm = (handler: { mmConfig?: Pick<MmConfig, 'spfV12'> }) =>
    new MmStruct({
      pageTables: PagetableOps.factory({ env, mmu }),
      freePgtablesUnderPtl: opts.freePgtablesUnderPtl,
      ...handler.mmConfig,
      ...opts.mm,
    });
  const map = (mm: MmStruct, pages: number, prot = PROT_READ | PROT_WRITE) => {
    const r = mmapSync(mm, {
      addr: A,
      len: pages * P,
      prot,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    if (!r.ok) throw new Error(`mmap: ${r.errno}`);
    return mm.findVma(A) as VmArea;
  };
  const task = new TaskFaultCounters();
  const fault = (
    h: { handleUserFault(f: UserFault): ReturnType<DufourSpfHandler['handleUserFault']> },
    mm: MmStruct,
    address: number,
    write: boolean,
  ) => runSync(h.handleUserFault({ mm, address, errorCode: PF_USER | (write ? PF_WRITE : 0), task }));
  return { mem, env, newMm, map, fault, task };
}

describe('dufourSpf options (bad input is refused at boot)', () => {
  it('refuses a system without pte_special unless unsafeWithoutPteSpecial, and says why', () => {
    const w = world({ pteSpecial: false });
    expect(() => dufourSpf()(w.env)).toThrow(FaultSpecConfigError);
    expect(() => dufourSpf()(w.env)).toThrow(
      /pteSpecial: false is refused: SPF v12 requires ARCH_HAS_PTE_SPECIAL/,
    );
    expect(dufourSpf({ unsafeWithoutPteSpecial: true })(w.env).name).toBe('dufour');
  });
  it('refuses unsafeWithoutPteSpecial on a system that has pte_special (contradictory)', () => {
    expect(() => dufourSpf({ unsafeWithoutPteSpecial: true })(world().env)).toThrow(
      /unsafeWithoutPteSpecial: true with pteSpecial: true is refused/,
    );
  });
  it('refuses specPgtableAlloc unless page tables are freed under page_table_lock', () => {
    expect(() => dufourSpf({ specPgtableAlloc: true })(world().env)).toThrow(
      /specPgtableAlloc: true with freePgtablesUnderPtl: false is refused/,
    );
    expect(dufourSpf({ specPgtableAlloc: true })(world({ freePgtablesUnderPtl: true }).env).name).toBe(
      'dufour',
    );
  });
  it('refuses unknown check names and non-boolean values', () => {
    expect(() => dufourSpf({ checks: { ptlTryLock: false } as never })).toThrow(
      /checks.ptlTryLock is refused: there is no such check/,
    );
    expect(() => dufourSpf({ checks: { ptlTrylock: 0 as never } })(world().env)).toThrow(
      /each check is true/,
    );
    expect(() => dufourSpf({ singleThreadShortcut: 'no' as never })(world().env)).toThrow(/is a boolean/);
  });

  it('refuses unknown option names (a typo must not leave the default silently), and a non-object', () => {
    expect(() => dufourSpf({ specPgtableAlloca: true } as never)).toThrow(
      /specPgtableAlloca is refused: no such option; the options are singleThreadShortcut, specPgtableAlloc/,
    );
    expect(() => dufourSpf({ checks: 'none' } as never)).toThrow(/checks is refused: must be an object/);
    expect(() => dufourSpf(null as never)).toThrow(/options is refused/);
  });
  it('lists every check with a description, and asks the mm for v12 bookkeeping', () => {
    expect(DUFOUR_CHECKS.map((c) => c.name)).toHaveLength(13);
    for (const c of DUFOUR_CHECKS) expect(c.description.length).toBeGreaterThan(20);
    const h = dufourSpf({ checks: { rcuFreeVma: false } })(world().env);
    expect(h.mmConfig).toEqual({ spfV12: { rcuPut: false } });
  });
  it('rbtreeLookup asks the mm for the v12 rbtree (default off), and must be a boolean', () => {
    expect(Object.keys(dufourSpf()(world().env).mmConfig?.spfV12 ?? {})).toEqual(['rcuPut']);
    const h = dufourSpf({ rbtreeLookup: true })(world().env);
    expect(h.mmConfig).toEqual({ spfV12: { rcuPut: true, rbtree: true } });
    expect(() => dufourSpf({ rbtreeLookup: 1 as never })(world().env)).toThrow(/rbtreeLookup is a boolean/);
  });
  it('fileVmas (the 2019 proposal) asks every mm to release vm_file in __free_vma(), unless vmFileLifetime is off', () => {
    expect(dufourSpf({ fileVmas: true })(world().env).mmConfig).toEqual({
      spfV12: { rcuPut: true },
      vmFileRelease: 'freeVma',
    });
    expect(dufourSpf({ fileVmas: true, checks: { vmFileLifetime: false } })(world().env).mmConfig).toEqual({
      spfV12: { rcuPut: true },
    });
    expect((dufourSpf()(world().env) as DufourSpfHandler).fileVmas).toBe(false);
    expect(() => dufourSpf({ fileVmas: 'yes' as never })(world().env)).toThrow(/fileVmas is a boolean/);
  });
});

describe('dufourSpf faults', () => {
  it('falls back for the first fault (no anon_vma, no page tables) and handles the next ones speculatively', () => {
    const w = world();
    const h = dufourSpf()(w.env) as DufourSpfHandler;
    const mm = w.newMm(h);
    mm.mmUsers.value = 2; // a second thread: the single-thread shortcut does not apply
    w.map(mm, 4);
    expect(w.fault(h, mm, A, true)).toEqual({ kind: 'handled' });
    expect(h.counters.spf_vma_noanon).toBe(1);
    expect(w.fault(h, mm, A + P, true)).toEqual({ kind: 'handled' });
    expect(w.fault(h, mm, A + 2 * P, false)).toEqual({ kind: 'handled' }); // the zero page
    expect(h.counters.speculative_pgfault).toBe(2);
    expect(ptePfn(mm.pgd.leaf(A + 2 * P)?.entry ?? 0n)).toBe(w.mem.zeroPfn);
    // A write to the zero page: do_wp_page -> wp_page_copy, speculatively.
    expect(w.fault(h, mm, A + 2 * P, true)).toEqual({ kind: 'handled' });
    expect(h.counters.speculative_pgfault).toBe(3);
    expect(h.speculativeStats()).toMatchObject({ attempts: 4, handled: 3 });
    expect(w.task.minflt).toBe(4);
    expect(w.env.vmstat.pgfault).toBe(4);
    expect(mmInvariantProblems([mm])).toEqual([]);
  });

  it('counts a missing page table and, with specPgtableAlloc, allocates it under page_table_lock', () => {
    for (const spec of [false, true]) {
      const w = world({ freePgtablesUnderPtl: true });
      const h = dufourSpf({ specPgtableAlloc: spec })(w.env) as DufourSpfHandler;
      const mm = w.newMm(h);
      mm.mmUsers.value = 2;
      const vma = w.map(mm, 1);
      runSync(anonVmaPrepare(vma));
      expect(w.fault(h, mm, A, true)).toEqual({ kind: 'handled' });
      expect(h.counters.spf_pgtable_missing).toBe(spec ? 0 : 1);
      expect(h.counters.speculative_pgfault).toBe(spec ? 1 : 0);
      expect(h.counters.spf_pgtable_alloc).toBe(spec ? 3 : 0); // PUD, PMD and PTE tables (4-level paging: no p4d)
      expect(mmInvariantProblems([mm])).toEqual([]);
    }
  });

  it('single-user mms skip the speculative path (patch 22), unless singleThreadShortcut is off', () => {
    for (const shortcut of [true, false]) {
      const w = world();
      const h = dufourSpf({ singleThreadShortcut: shortcut })(w.env) as DufourSpfHandler;
      const mm = w.newMm(h);
      w.map(mm, 2);
      w.fault(h, mm, A, true);
      w.fault(h, mm, A + P, true);
      expect(h.speculativeStats().attempts).toBe(shortcut ? 0 : 2);
      expect(h.counters.speculative_pgfault).toBe(shortcut ? 0 : 1);
    }
  });

  it('an access error is left to the classic path (spf_vma_access), which sends SIGSEGV ACCERR', () => {
    const w = world();
    const h = dufourSpf()(w.env) as DufourSpfHandler;
    const mm = w.newMm(h);
    mm.mmUsers.value = 2;
    const vma = w.map(mm, 1, PROT_READ);
    runSync(anonVmaPrepare(vma));
    expect(w.fault(h, mm, A, true)).toEqual({ kind: 'sigsegv', code: 'ACCERR', address: A });
    expect(h.counters.spf_vma_access).toBe(1);
    expect(w.fault(h, mm, A + 5 * P, false)).toMatchObject({ kind: 'sigsegv', code: 'MAPERR' });
    expect(h.counters.spf_no_vma).toBe(1);
  });

  it('refuses to run on an mm built without the v12 tree bookkeeping', () => {
    const w = world();
    const h = dufourSpf({ singleThreadShortcut: false })(w.env);
    const mm = w.newMm(classicFaultHandler(w.env));
    w.map(mm, 1);
    expect(() => w.fault(h as DufourSpfHandler, mm, A, true)).toThrow(/built without MmConfig.spfV12/);
  });
});

describe('dufourSpf paths (the injection point of handle_speculative_fault)', () => {
  it('runs the injected attempt; VM_FAULT_RETRY from it falls back to the classic path', () => {
    const w = world();
    const seen: number[] = [];
    const paths: DufourSpfPaths = {
      *handleSpeculativeFault(ctx, mm, address, errorCode, flags) {
        seen.push(address);
        if (address === A) return VM_FAULT_RETRY; // this one falls back
        return yield* handleSpeculativeFault(ctx, mm, address, errorCode, flags);
      },
    };
    const h = dufourSpf({ paths, singleThreadShortcut: false })(w.env) as DufourSpfHandler;
    const mm = w.newMm(h);
    w.map(mm, 2);
    expect(w.fault(h, mm, A, true)).toEqual({ kind: 'handled' }); // classic: allocates anon_vma and tables
    expect(w.fault(h, mm, A + P, true)).toEqual({ kind: 'handled' });
    expect(seen).toEqual([A, A + P]);
    expect(h.speculativeStats()).toMatchObject({ attempts: 2, handled: 1 });
    expect(mmInvariantProblems([mm])).toEqual([]);
  });
  it('refuses paths without a handleSpeculativeFault function', () => {
    expect(() => dufourSpf({ paths: {} as never })).toThrow(
      /paths is refused: must be an object with a handleSpeculativeFault generator function/,
    );
  });
});

describe('find_vma_rcu and vma_has_changed', () => {
  function state(mm: MmStruct, vma: VmArea, seq: number, detachedCheck = true): SpeculativeFaultState {
    const checks = { ...(dufourSpf()(world().env) as DufourSpfHandler).checks, detachedCheck };
    return {
      mm,
      address: A,
      checks,
      counters: makeDufourCounters(),
      vma,
      seq,
      pmdp: 0,
      origPmd: 0n,
      ptep: 0,
      origPte: 0n,
    };
  }
  it('find_vma_rcu references the VMA it returns (get_vma), and only with vmaRefcount', () => {
    const w = world();
    const h = dufourSpf()(w.env) as DufourSpfHandler;
    const mm = w.newMm(h);
    const vma = w.map(mm, 1);
    expect(runSync(findVmaRcu(mm, A, h.checks))).toBe(vma);
    expect(vma.refCount.value).toBe(2);
    expect(runSync(findVmaRcu(mm, A, { ...h.checks, vmaRefcount: false }))).toBe(vma);
    expect(vma.refCount.value).toBe(2);
    expect(runSync(findVmaRcu(mm, A + 8 * P, h.checks))).toBeNull();
  });
  it('vma_has_changed sees a write section and a detached VMA (the latter only with detachedCheck)', () => {
    const w = world();
    const h = dufourSpf()(w.env) as DufourSpfHandler;
    const mm = w.newMm(h);
    const vma = w.map(mm, 1);
    const seq = vma.vmSequence.peek();
    expect(runSync(vmaHasChanged(state(mm, vma, seq)))).toBe(false);
    vma.detached = true;
    expect(runSync(vmaHasChanged(state(mm, vma, seq)))).toBe(true);
    expect(runSync(vmaHasChanged(state(mm, vma, seq, false)))).toBe(false);
    vma.detached = false;
    runSync(vmWriteBegin(vma));
    runSync(vmWriteEnd(vma));
    expect(runSync(vmaHasChanged(state(mm, vma, seq)))).toBe(true);
  });
});
