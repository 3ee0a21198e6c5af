import { makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { Rcu } from '@spf/locks';
import {
  defaultCostModel,
  ExplorationFailure,
  type ExploreOptions,
  exploreInTest,
  type Kernel,
  KernelFault,
  type Scenario,
} from '@spf/machine';
import { Mmu, PF_USER, PF_WRITE, PhysicalMemory, ptePresent } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MmStruct,
  mmInvariantProblems,
  mmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
  putVma,
  sysMmap,
  sysMunmap,
  type VmArea,
} from '@spf/vma';
import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import type { DufourChecks } from './dufour-checks.js';
import { type DufourSpfHandler, dufourSpf } from './dufour-spf.js';
import { findVmaRcu } from './find-vma-rcu.js';

// Issue 13, item 5, for `mmSeqRetry`: with `rbtreeLookup` (Linux 5.1's rbtree, updated in place, as SPF v12
// ran on) and the mm_seq retry of find_vma_rcu() removed, the explorer finds a lookup that returns a wrong
// VMA (or none) for an address a VMA covered during the whole lookup; with the retry it explores clean.

const P = 4096;
const A = 0x2000_0000;
/** VMAs sit every SLOT pages (one page each), so no two are adjacent and nothing merges. */
const SLOT = 4;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

/** Slot `i`'s start address. */
const slot = (i: number) => A + i * SLOT * P;

/** The writer's work: munmap and mmap of one-page VMAs (each one an rbtree erase or insert). */
type WriterOp = { op: 'mmap' | 'munmap'; addr: number };

/**
 * `times` rounds of munmap and mmap again of the VMA in slot `i`. With seven VMAs linked in address order,
 * the tree is 1(0, 3(2, 5(4, 6))); after slot 5's erase slot 4 is the red left child of slot 6, and linking
 * slot 5 again (as slot 4's right child) runs __rb_insert()'s case 2 (left rotation at slot 4) and case 3
 * (right rotation at slot 6). From the store of slot 6's rb_left (slot 5's old left child: none) to the
 * store of slot 3's rb_right (slot 5), slot 4 hangs under slot 5, which nothing links yet: a walk for slot
 * 4 goes 1, 3, 6, finds no left child and returns slot 6. Found by running a whole lookup between every two
 * stores of the candidate updates.
 */
const remapRounds = (i: number, times: number): WriterOp[] =>
  Array.from({ length: times }, () => [
    { op: 'munmap' as const, addr: slot(i) },
    { op: 'mmap' as const, addr: slot(i) },
  ]).flat();

/** A KernelFault the checker raises: find_vma_rcu() answered wrongly for an address covered throughout. */
class WrongLookupError extends KernelFault {
  override name = 'WrongLookupError';
}

/**
 * The scenario: `vmas` one-page VMAs in slots 0.., the one in slot `stable` read-write (so it never merges),
 * the others read-only. CPU 0 runs `ops` (each a syscall under mmap_lock), CPU 1 runs, while the writer has
 * not finished, SPF v12's
 * `find_vma_rcu()` for an address of the stable VMA and checks each answer. The checker trusts no model
 * code it tests: before and after each lookup it asks the B+tree (the tree every other path uses, which the
 * lookup does not read) which VMA covers the address and samples that VMA's `vm_sequence`. If both answers
 * are the same VMA and its sequence was even and unchanged, that VMA covered the address for the whole
 * lookup (its range only changes, and it is only unlinked, inside a write section, which bumps the
 * sequence), and a right `find_vma_rcu()` must return it.
 */
function scenario(
  name: string,
  checks: Partial<DufourChecks>,
  shape: { vmas: number; stable: number; ops: readonly WriterOp[]; maxLookups: number },
): Scenario {
  const X = slot(shape.stable);
  return {
    name,
    cpus: 2,
    setup(m) {
      const mem = new PhysicalMemory({ size: 1 << 20, zeroPage: true });
      const env = makeFaultEnv({ mem, cost: defaultCostModel });
      const handler = dufourSpf({ rbtreeLookup: true, checks })(env) as DufourSpfHandler;
      const mm = new MmStruct({ rcu: new Rcu(m), ...handler.mmConfig });
      for (let i = 0; i < shape.vmas; i++) {
        // X is read-write, its neighbours read-only: X never merges with anything the writer maps.
        const prot = slot(i) === X ? PROT_READ | PROT_WRITE : PROT_READ;
        const r = mmapSync(mm, { addr: slot(i), len: P, prot, flags: ANON });
        if (!r.ok) throw new Error(`setup mmap of slot ${i}: errno ${r.errno}`);
      }
      const stable = mm.vmaLookup(X) as VmArea;
      let writerDone = false;
      m.spawn(0, 'writer', function* (): Kernel<void> {
        for (const o of shape.ops) {
          const r =
            o.op === 'mmap'
              ? yield* sysMmap(mm, { addr: o.addr, len: P, prot: PROT_READ, flags: ANON })
              : yield* sysMunmap(mm, o.addr, P);
          if (!r.ok) throw new Error(`${o.op} at ${o.addr.toString(16)}: errno ${r.errno}`);
        }
        writerDone = true;
      });
      let lookupsDone = 0;
      m.spawn(1, 'spf', function* (): Kernel<void> {
        // Look up while the writer runs (at most maxLookups times, so a DFS that runs this CPU first ends).
        for (let i = 0; i < shape.maxLookups && (i === 0 || !writerDone); i++) {
          const addr = X + ((i * 97) % P);
          const before = mm.vmaLookup(addr);
          const seq = before?.vmSequence.peek() ?? 1;
          const vma = yield* findVmaRcu(mm, addr, handler.checks);
          const after = mm.vmaLookup(addr);
          if (before !== null && after === before && (seq & 1) === 0 && before.vmSequence.peek() === seq) {
            if (vma !== before) {
              throw new WrongLookupError(
                'spf-wrong-lookup',
                `find_vma_rcu(${addr.toString(16)}) returned ${vma ?? 'null'} while ${before} covered the address during the whole lookup (a speculative fault would fall back to the classic path: ${vma === null ? 'no VMA' : 'address outside the VMA'})`,
              );
            }
          }
          if (vma !== null && handler.checks.vmaRefcount) yield* putVma(vma);
          lookupsDone++;
        }
      });
      return () => {
        expect(lookupsDone).toBeGreaterThan(0);
        expect(mm.vmaLookup(X)).toBe(stable);
        expect(mm.rbTree?.validate([...mm.vmas()])).toEqual([]);
      };
    },
  };
}

const random = (runs: number, seed = 1): ExploreOptions => ({ policy: 'random', runs, seed });
const pct = (runs: number, depth: number, seed = 1): ExploreOptions => ({ policy: 'pct', runs, seed, depth });

/** Explores `s` and expects the wrong-lookup failure; prints its first lines and the replay command. */
function expectWrongLookup(s: Scenario, opts: ExploreOptions, name: string): string {
  let caught: unknown = null;
  try {
    exploreInTest(s, opts, name);
  } catch (e) {
    caught = e;
  }
  expect(caught, `${name}: nothing found within ${opts.runs} schedules`).toBeInstanceOf(ExplorationFailure);
  const msg = (caught as Error).message;
  console.log(`${name}\n${msg.split('\n').slice(0, 3).join('\n')}\n${msg.match(/SPF_REPLAY=.*$/m)?.[0]}`);
  expect(msg).toMatch(/find_vma_rcu\(\w+\) returned .* while vma#\d+\[.*\] covered the address/);
  return msg;
}

const BIG = { vmas: 7, stable: 4, ops: remapRounds(5, 10), maxLookups: 300 };
const SMALL = { vmas: 7, stable: 4, ops: remapRounds(5, 1), maxLookups: 2 };

describe('mmSeqRetry on the v12 rbtree (rbtreeLookup)', { timeout: 240_000 }, () => {
  it('mmSeqRetry off: a lookup between the stores of a rotation misses the stable VMA (random 2000)', () => {
    expectWrongLookup(
      scenario('mmSeqRetry off', { mmSeqRetry: false }, BIG),
      random(2000),
      'mmSeqRetry off: a lookup between the stores of a rotation misses the stable VMA (random 2000)',
    );
  });

  it('mmSeqRetry off: PCT finds it too (pct 2000 x depth 3)', () => {
    expectWrongLookup(
      scenario('mmSeqRetry off (pct)', { mmSeqRetry: false }, BIG),
      pct(2000, 3),
      'mmSeqRetry off: PCT finds it too (pct 2000 x depth 3)',
    );
  });

  it('every check on: the same scenario explores clean (random 2000, pct 2000 x depth 3)', () => {
    const s = scenario('all checks', {}, BIG);
    expect(exploreInTest(s, random(2000), 'all checks, random 2000').failure).toBeNull();
    expect(exploreInTest(s, pct(2000, 3), 'all checks, pct 2000 x depth 3').failure).toBeNull();
  });

  it('a small version (one unlink and relink, two lookups) under bounded DFS: clean with every check, caught without the retry', () => {
    const dfs: ExploreOptions = { policy: 'dfs', bound: 2, runs: 5000 };
    const res = exploreInTest(
      scenario('all checks, small', {}, SMALL),
      dfs,
      'all checks, small, dfs bound 2',
    );
    console.log(`all checks, small, dfs bound 2: ${res.runs} schedules, exhausted: ${res.exhausted}`);
    expect(res.failure).toBeNull();
    expect(res.exhausted).toBe(true);
    expectWrongLookup(
      scenario('mmSeqRetry off, small', { mmSeqRetry: false }, SMALL),
      dfs,
      'a small version (one unlink and relink, two lookups) under bounded DFS: clean with every check, caught without the retry',
    );
  });
});

/** Pages of the stable VMA in the fault scenario (the others stay one page; slots are 32 pages apart, all in one page table). */
const STABLE_PAGES = 16;
const FAULT_SLOT = 32;

/**
 * The same tree and writer, with whole speculative faults: CPU 1 write-faults pages 1.. of the stable VMA
 * (page 0 was touched in setup, so the VMA has its anon_vma and page table) through the Dufour handler
 * while CPU 0 unlinks and relinks its neighbour. Each run ends with the mm invariants checked and every
 * faulted page mapped; `spurious` adds up the attempts on the stable VMA that gave up because the lookup
 * found no VMA (`spf_no_vma`) or another one: the read-only neighbour has no anon_vma, which v12 checks
 * before the bounds (`spf_vma_noanon`), and one with an anon_vma would fail the bounds check
 * (`spf_vma_changed`). None of the three can come from the stable VMA itself after setup: it has its
 * anon_vma, covers every faulted address, and its `vm_sequence` never changes.
 */
function faultScenario(checks: Partial<DufourChecks>, tally: { spurious: number; runs: number }): Scenario {
  const at = (i: number) => A + i * FAULT_SLOT * P;
  const X = at(4);
  return {
    name: 'speculative faults on a stable VMA while its neighbour is relinked',
    cpus: 2,
    setup(m) {
      const mem = new PhysicalMemory({ size: 4 << 20, zeroPage: true });
      const env = makeFaultEnv({ mem, cost: defaultCostModel });
      const mmu = new Mmu(mem, { cpus: 2 });
      const handler = dufourSpf({ rbtreeLookup: true, singleThreadShortcut: false, checks })(
        env,
      ) as DufourSpfHandler;
      const mm = new MmStruct({
        rcu: new Rcu(m),
        pageTables: PagetableOps.factory({ env, mmu }),
        ...handler.mmConfig,
      });
      for (let i = 0; i < 7; i++) {
        const stable = at(i) === X;
        const r = mmapSync(mm, {
          addr: at(i),
          len: stable ? STABLE_PAGES * P : P,
          prot: stable ? PROT_READ | PROT_WRITE : PROT_READ,
          flags: ANON,
        });
        if (!r.ok) throw new Error(`setup mmap of slot ${i}: errno ${r.errno}`);
      }
      const task = new TaskFaultCounters();
      const fault = (address: number) =>
        handler.handleUserFault({ mm, address, errorCode: PF_USER | PF_WRITE, task });
      expect(runSync(fault(X))).toEqual({ kind: 'handled' });
      const spurious = () => {
        const c = handler.counters;
        return c.spf_no_vma + c.spf_vma_changed + c.spf_vma_noanon;
      };
      const before = spurious();
      m.spawn(0, 'writer', function* (): Kernel<void> {
        for (let k = 0; k < 8; k++) {
          const u = yield* sysMunmap(mm, at(5), P);
          const r = yield* sysMmap(mm, { addr: at(5), len: P, prot: PROT_READ, flags: ANON });
          if (!u.ok || !r.ok) throw new Error('writer: munmap/mmap of the neighbour failed');
        }
      });
      m.spawn(1, 'spf', function* (): Kernel<void> {
        for (let i = 1; i < STABLE_PAGES; i++) {
          const out = yield* fault(X + i * P);
          if (out.kind !== 'handled') throw new Error(`fault at page ${i} of the stable VMA: ${out.kind}`);
        }
      });
      return () => {
        for (let i = 0; i < STABLE_PAGES; i++)
          expect(ptePresent(mm.pgd.leaf(X + i * P)?.entry ?? 0n), `page ${i} mapped`).toBe(true);
        expect(mmInvariantProblems([mm])).toEqual([]);
        tally.spurious += spurious() - before;
        tally.runs++;
      };
    },
  };
}

describe('what a wrong v12 lookup costs: a fallback, never corruption (rbtreeLookup)', {
  timeout: 240_000,
}, () => {
  it('mmSeqRetry off: some attempts fall back spuriously, every fault still completes and the mm stays sound (random 1000)', () => {
    const tally = { spurious: 0, runs: 0 };
    const res = exploreInTest(
      faultScenario({ mmSeqRetry: false }, tally),
      random(1000),
      'mmSeqRetry off: spurious fallbacks only (random 1000)',
    );
    expect(res.failure).toBeNull();
    expect(tally.runs).toBe(1000);
    console.log(
      `mmSeqRetry off: ${tally.spurious} spurious fallbacks on the stable VMA in ${tally.runs} runs`,
    );
    expect(tally.spurious).toBeGreaterThan(0);
  });

  it('every check on: no spurious fallback on the stable VMA (random 1000)', () => {
    const tally = { spurious: 0, runs: 0 };
    const res = exploreInTest(
      faultScenario({}, tally),
      random(1000),
      'all checks: no spurious fallback (random 1000)',
    );
    expect(res.failure).toBeNull();
    expect(tally.runs).toBe(1000);
    expect(tally.spurious).toBe(0);
  });
});
