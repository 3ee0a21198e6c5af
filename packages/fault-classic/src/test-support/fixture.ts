import { defaultCostModel, expandCalls, type Kernel, runSync } from '@spf/machine';
import { defaultLockdep } from '@spf/locks';
import { ACCESS_USER, ACCESS_WRITE, Mmu, type Page, PhysicalMemory, getPage } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  type MmapFile,
  MmStruct,
  mmInvariantProblems,
  mmapSync,
  PagetableOps,
  pmdAllocWalk,
  type VmArea,
  type VmFault,
  type VmFile,
  type VmOperations,
} from '@spf/vma';
import { doUserAddrFault, type LocklessFaultAttempt } from '../do-user-addr-fault.js';
import { TaskFaultCounters } from '../fault-counters.js';
import { type FaultEnv, makeFaultEnv } from '../fault-env.js';
import type { FaultOutcome } from '../fault-handler.js';
import { VM_FAULT_RETRY } from '../fault-flags.js';
import type { PteFaultPaths } from '../pte-fault-paths.js';
import type { UserFaultPaths } from '../user-fault-paths.js';
import { type ClassicVmFault, faultFlagAllowRetryFirst, releaseFaultLock } from '../vm-fault.js';

/** Options of {@link makeFixture}. */
export interface FixtureOptions {
  readonly pteFaultPaths?: PteFaultPaths;
  /** The retry loop and fault accounting to inject (`FaultEnv.userFaultPaths`); default the package's. */
  readonly userFaultPaths?: UserFaultPaths;
  readonly zeroPage?: boolean;
  readonly pteSpecial?: boolean;
  readonly memory?: number;
  /** The faulting task's `signal_pending()` (see {@link UserFault.signalPending}); default: never. */
  readonly signalPending?: () => boolean;
  /** Most effects one `fault()` may perform before it is declared a livelock; default {@link FAULT_STEP_LIMIT}. */
  readonly maxSteps?: number;
  /** A lockless attempt `fault()` passes to `doUserAddrFault()` (the speculative designs' hook); default none. */
  readonly lockless?: LocklessFaultAttempt;
}

/**
 * Effects one synchronous fault may take before the fixture gives up: a single fault (even one that retries
 * once, allocates four page-table levels and copies a page) performs a few hundred; a handler that answers
 * VM_FAULT_RETRY forever performs unboundedly many.
 */
export const FAULT_STEP_LIMIT = 100_000;

/** Thrown by the fixture's `fault()` when one fault does not finish within its step limit. */
export class FaultLivelockError extends Error {
  override readonly name = 'FaultLivelockError';
}

/**
 * Runs `code` like `runSync`, but throws {@link FaultLivelockError} once it has performed `limit` effects,
 * so that a handler that retries forever fails the test instead of hanging the suite. The abandoned fault
 * may hold locks: lockdep is reset so that they are not reported against the tests that run after it.
 */
function* stepLimited<T>(kernelCode: Kernel<T>, limit: number, what: () => string): Kernel<T> {
  // Every effect is counted, those of `yield* call(...)` callees too.
  const code = expandCalls(kernelCode);
  let resume: unknown;
  for (let steps = 0; ; steps++) {
    const r = code.next(resume);
    if (r.done) return r.value;
    if (steps >= limit) {
      defaultLockdep.reset();
      throw new FaultLivelockError(
        `${what()} did not finish within ${limit} kernel steps: the fault path is looping ` +
          "(a VM_FAULT_RETRY livelock?); raise the fixture's maxSteps only if the fault is really that long",
      );
    }
    resume = yield r.value;
  }
}

/** The outcome of a simulated user access: the byte loaded (or 0 for a store), or the fault's outcome. */
export type TouchResult =
  | { readonly ok: true; readonly value: number; readonly faults: number }
  | FaultOutcome;

const live: { problems(): string[] }[] = [];

/**
 * The mm invariants of every fixture made since the last call (every mm each one tracks), for an
 * `afterEach`: returns the problems found and forgets the fixtures.
 */
export function fixtureProblems(): string[] {
  const out = live.flatMap((f) => f.problems());
  live.length = 0;
  return out;
}

/**
 * One address space on @spf/pagetable with the classic handler, driven synchronously (runSync) by a
 * one-CPU MMU: `touch()` does what the hardware does (translate; on #PF run the handler and retry).
 */
export function makeFixture(opts: FixtureOptions = {}) {
  const mem = new PhysicalMemory({ size: opts.memory ?? 64 * 1024 * 1024, zeroPage: opts.zeroPage ?? true });
  const env: FaultEnv = {
    ...makeFaultEnv({
      mem,
      cost: defaultCostModel,
      pteSpecial: opts.pteSpecial,
      pteFaultPaths: opts.pteFaultPaths,
    }),
    ...(opts.userFaultPaths ? { userFaultPaths: opts.userFaultPaths } : {}),
  };
  const mmu = new Mmu(mem, { cpus: 1 });
  const newMm = () => new MmStruct({ pageTables: PagetableOps.factory({ env, mmu }) });
  const mm = newMm();
  const ptOf = (m: MmStruct) => m.pgd;
  const task = new TaskFaultCounters();
  const bootFree = mem.freeCount;

  function fault(address: number, errorCode: number, m = mm, t = task): FaultOutcome {
    const code = doUserAddrFault(
      env,
      { mm: m, address, errorCode, task: t, signalPending: opts.signalPending },
      opts.lockless,
    );
    return runSync(
      stepLimited(code, opts.maxSteps ?? FAULT_STEP_LIMIT, () => `the fault at 0x${address.toString(16)}`),
    );
  }

  function touch(address: number, kind: 'r' | 'w', value = 0x5a, m = mm, t = task): TouchResult {
    mmu.switchMm(0, ptOf(m));
    const acc = ACCESS_USER | (kind === 'w' ? ACCESS_WRITE : 0);
    for (let faults = 0; faults < 8; faults++) {
      const pa = mmu.access(0, address, acc);
      if (pa >= 0) {
        if (kind === 'w') mem.write8(pa, value);
        return { ok: true, value: kind === 'r' ? mem.read8(pa) : 0, faults };
      }
      const out = fault(address, mmu.fault.errorCode, m, t);
      if (out.kind !== 'handled') return out;
    }
    throw new Error(`fault loop at 0x${address.toString(16)}`);
  }

  function mmapAnon(addr: number, pages: number, prot: number, flags = MAP_PRIVATE, m = mm): number {
    const r = mmapSync(m, {
      addr,
      len: pages * 4096,
      prot,
      flags: flags | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    if (!r.ok) throw new Error(`mmap failed with errno ${r.errno}`);
    return r.value;
  }

  function mmapFile(
    addr: number,
    pages: number,
    prot: number,
    flags: number,
    file: MmapFile,
    m = mm,
  ): number {
    const r = mmapSync(m, { addr, len: pages * 4096, prot, flags: flags | MAP_FIXED_NOREPLACE, file });
    if (!r.ok) throw new Error(`mmap failed with errno ${r.errno}`);
    return r.value;
  }

  /**
   * A `struct vm_fault` for `address` in its VMA, as `__handle_mm_fault()` builds it (the PMD allocated, no
   * PTE looked at yet), for calling a handler stage directly.
   */
  function vmfAt(address: number, flags: number, m = mm): ClassicVmFault {
    const vma = m.findVma(address) as VmArea;
    const addr = address - (address % 4096);
    const pmd = runSync(pmdAllocWalk(env, m, addr)) as number;
    return {
      env,
      mm: m,
      vma,
      address: addr,
      realAddress: address,
      pgoff: vma.linearPageIndex(addr),
      flags,
      pmd,
      pte: null,
      origPte: 0n,
      ptl: null,
      cowPage: null,
      vmaFlags: vma.vmFlags,
      vmaPageProt: vma.vmPageProt,
      origPmd: 0n,
      speculative: null,
    };
  }

  /** The PTE mapping `address`, or 0n. */
  function pte(address: number, m = mm): bigint {
    const steps = ptOf(m).lookup(address);
    const last = steps[steps.length - 1];
    return last.level === 1 ? last.entry : 0n;
  }

  /** @spf/vma's invariant checker over the given mms, with page mapcounts and refcounts. */
  function invariantProblems(
    mms: readonly MmStruct[] = [mm],
    extraRefs: (p: Page) => number = (p) => (p.mapping instanceof TestFile ? 1 : 0),
  ): string[] {
    return mmInvariantProblems(mms, {
      mapcount: (p) => p.mapcount,
      refcount: (p) => p.refcount,
      extraRefs,
    });
  }

  const tracked: MmStruct[] = [mm];
  /** Includes `m` (e.g. a fork child) in the end-of-test invariant check. */
  function track(m: MmStruct): MmStruct {
    tracked.push(m);
    return m;
  }
  live.push({ problems: () => invariantProblems(tracked) });

  return {
    mem,
    env,
    mmu,
    mm,
    pt: ptOf(mm),
    ptOf,
    task,
    bootFree,
    newMm,
    fault,
    touch,
    mmapAnon,
    mmapFile,
    pte,
    vmfAt,
    invariantProblems,
    track,
  };
}

/** A tiny page-cache file for vm_ops tests: page `i` holds the byte `i + 1` everywhere it was written. */
export class TestFile implements VmFile {
  readonly path = '/test/file';
  readonly devMajor = 8;
  readonly devMinor = 1;
  readonly ino = 42;
  readonly pages = new Map<number, Page>();
  faultCalls = 0;
  mkwriteCalls = 0;
  /** The first fault of each page returns VM_FAULT_RETRY after dropping the mmap lock (like waiting for I/O). */
  retryFirst = false;
  /** Every fault returns VM_FAULT_RETRY after dropping the mmap lock, even with FAULT_FLAG_TRIED: a livelock. */
  retryAlways = false;
  /** Pages beyond this many give SIGBUS (like a fault past EOF). */
  size = Number.POSITIVE_INFINITY;

  constructor(private readonly mem: PhysicalMemory) {}

  /** The page-cache page at `pgoff`, created with its pattern on first use (the cache keeps one reference). */
  cachePage(pgoff: number): Page {
    let p = this.pages.get(pgoff);
    if (p === undefined) {
      p = this.mem.allocPages(0);
      this.mem.write8(p.pa, pgoff + 1);
      p.mapping = this;
      p.index = pgoff;
      p.set('uptodate');
      this.pages.set(pgoff, p);
    }
    return p;
  }

  ops(): VmOperations {
    const file = this;
    return {
      *fault(vmf: VmFault): Kernel<number> {
        file.faultCalls++;
        if (vmf.pgoff >= file.size) return 0x2; // VM_FAULT_SIGBUS
        if (file.retryAlways || (file.retryFirst && faultFlagAllowRetryFirst(vmf.flags))) {
          yield* releaseFaultLock(vmf);
          return VM_FAULT_RETRY;
        }
        const page = file.cachePage(vmf.pgoff);
        yield* getPage(page);
        (vmf as ClassicVmFault).page = page;
        return 0;
      },
      *pageMkwrite(): Kernel<number> {
        file.mkwriteCalls++;
        return 0;
      },
    };
  }

  mmapFile(): MmapFile {
    return { file: this, ops: this.ops(), readable: true, writable: true };
  }
}
