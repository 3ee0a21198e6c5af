import { type PteFaultPaths, withPteFaultPaths } from '@spf/fault-classic';
import { type DufourSpfPaths, dufourSpf } from '@spf/fault-spec';
import { type BootConfig, boot, type System, type UserContext } from '@spf/kernel';
import { block, type ExploreOptions, kassert, type Machine, WaitQueue, wake } from '@spf/machine';
import { MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ } from '@spf/vma';
import { traceStudent } from '../debug-probe.js';
import { TestFailure } from '../lab-errors.js';
import type { LabTest, TestContext } from '../lab.js';
import { checkSchedules } from '../lab2/explorer-check.js';
import {
  catching,
  expectEq,
  hex,
  LAB_MEMORY,
  mapAnon,
  pctSearch,
  type Program,
  runOnSystem,
  studentPteFaultPaths,
} from '../lab3/kernel-harness.js';

const A = 0x5000_0000; // 2 MiB aligned: unmapping the whole region frees its page tables
const B = 0x6000_0000;
const P = 4096;
const N = 8;

/**
 * What a test runs on: the student's `handleSpeculativeFault` as fault-spec's `DufourSpfPaths` (traced for
 * the debugger), and their Lab 3 `do_anonymous_page()`/`do_wp_page()` when the grading was handed a
 * full-marks Lab 3 solution (otherwise the package's).
 */
type Student4 = { readonly spf: DufourSpfPaths; readonly pte: PteFaultPaths | null };

function studentSpf(ctx: TestContext): Student4 {
  const handleSpeculativeFault = ctx.fn<DufourSpfPaths['handleSpeculativeFault']>(
    'speculative-fault.ts',
    'handleSpeculativeFault',
  );
  const lab3 = ctx.earlier?.lab3;
  return {
    spf: traceStudent({ handleSpeculativeFault }, ['handleSpeculativeFault']),
    pte: lab3 === undefined ? null : studentPteFaultPaths(lab3),
  };
}

/**
 * Boots @spf/kernel with Dufour's SPF running the student's attempt. The single-thread shortcut is off, so
 * that every fault tries the speculative path, even in a process with one thread.
 */
function bootSpf(paths: Student4, config: BootConfig = {}): System {
  const handler = dufourSpf({ paths: paths.spf, singleThreadShortcut: false });
  return boot({
    memory: LAB_MEMORY,
    cpus: 2,
    ...config,
    faultHandler: paths.pte === null ? handler : withPteFaultPaths(handler, paths.pte),
  });
}

/** How many faults the speculative path finished. */
const specHandled = (sys: System): number => sys.faultHandler.speculativeStats?.().handled ?? 0;

/** A user program, typed loosely enough for the scenarios' small generator bodies. */
type Body = (u: UserContext) => Generator<unknown, void, unknown>;

/**
 * A process whose main thread (CPU 0) prepares a region, starts a second thread (CPU 1) running `other`,
 * then runs `main`; the system checks the mm invariants at exit, and the final check that every frame was
 * freed.
 */
function raceScenario(paths: Student4, prepare: Body, main: Body, other: Body) {
  return {
    cpus: 2,
    maxSteps: 300_000,
    setup(m: Machine) {
      const sys = bootSpf(paths, { machine: m });
      sys.spawnProcess('spf', function* (u) {
        yield* prepare(u);
        yield* u.spawnThread(other as Program, 1);
        yield* main(u);
        // Returning ends the process (exit_group): the other thread stops at its next access.
      } as Program);
      return () => {
        const problems = sys.invariantProblems();
        kassert(problems.length === 0, `after the process exited: ${problems.join('; ')}`);
      };
    },
  };
}

/** N pages at A; the first is touched, so the VMA has its anon_vma and the region its page tables. */
function* region(u: UserContext) {
  yield* mapAnon(u, A, N);
  yield* u.store8(A, 1);
}

/** The second thread's first-touch stores to pages 1..N-1 (a SIGSEGV ends them: the region went away). */
function* storer(t: UserContext) {
  yield* catching(t, function* () {
    for (let i = 1; i < N; i++) yield* t.store8(A + i * P, i);
  });
}

/**
 * How each explored test searches. Each schedule boots a kernel and runs a whole program (a few ms), and a
 * race's window is a few steps of a run of some 600, so the budgets are sized by `bench/budget-robustness.ts`
 * (README, "How robust the explored checks are"): each known-buggy variant aimed at a test is caught at
 * nearly every seed of its budget, not only at the seed fixed here, and the reference explores clean at 50
 * seeds. More PCT priority change points (depth 6 to 8) hit the windows in fewer schedules than depth 2 or 3.
 */
export const LAB4_SEARCH: Record<string, ExploreOptions> = {
  'spec-vs-munmap': pctSearch(200, 8, 7),
  'spec-vs-mprotect': pctSearch(150, 8, 4),
  'spec-vs-mremap': pctSearch(20, 3, 1),
  'spec-vs-cow-flush': pctSearch(30, 6, 1),
};

/** Lab 4's graded tests (100 points). */
export const lab4Tests: readonly LabTest[] = [
  {
    id: 'spec-first-touch',
    title: 'First touches handled speculatively',
    points: 15,
    category: 'functionality',
    description:
      'Once a VMA has its anon_vma and page tables, first-touch stores are finished without mmap_lock and read back; a VMA without them, and a page whose page table is missing, fall back to the classic path and work too.',
    run(ctx) {
      const paths = studentSpf(ctx);
      const seen: number[] = [];
      const sys = runOnSystem(bootSpf(paths), function* (u) {
        yield* mapAnon(u, A, 4);
        // The first fault: no anon_vma yet, so it falls back (and the classic path creates it).
        yield* u.store8(A, 10);
        for (let i = 1; i < 4; i++) yield* u.store8(A + i * P, 10 + i);
        // 2 MiB on: the same kind of VMA but no page table there yet (the walk finds it missing).
        yield* mapAnon(u, A + 0x20_0000 - P, 2);
        yield* u.store8(A + 0x20_0000 - P, 20);
        yield* u.store8(A + 0x20_0000, 21);
        for (let i = 0; i < 4; i++) seen.push(yield* u.load8(A + i * P));
        seen.push(yield* u.load8(A + 0x20_0000 - P), yield* u.load8(A + 0x20_0000));
      } as Program);
      expectEq(seen.join(','), '10,11,12,13,20,21', 'the bytes read back');
      const handled = specHandled(sys);
      if (handled < 3)
        throw new TestFailure(
          'first touches of a VMA with anon_vma and page tables must finish speculatively',
          {
            expected: 'at least 3 faults handled by your speculative path',
            actual: `${handled}`,
          },
        );
    },
  },
  {
    id: 'spec-zero-and-cow',
    title: 'Zero page and write after read, speculatively',
    points: 10,
    category: 'functionality',
    parent: 'spec-first-touch',
    description:
      'A read maps the zero page, a later write copies it; both run through handle_pte_fault from your attempt, and every page reads what was written.',
    run(ctx) {
      const paths = studentSpf(ctx);
      const seen: (number | string)[] = [];
      let before = 0;
      const sys = runOnSystem(bootSpf(paths), function* (u) {
        yield* mapAnon(u, A, 4);
        yield* u.store8(A, 1);
        before = specHandled(u.system);
        seen.push(yield* u.load8(A + P));
        seen.push(u.pagemap(A + P));
        yield* u.store8(A + P + 3, 9);
        seen.push(yield* u.load8(A + P + 3), u.pagemap(A + P), yield* u.load8(A + 2 * P));
      } as Program);
      expectEq(seen.join(','), '0,Z,9,A,0', 'read 0 (Z), write 9, read 9 (A), another page reads 0');
      expectEq(specHandled(sys) - before, 3, 'faults handled speculatively (the read, the write, the read)');
    },
  },
  {
    id: 'spec-access-error',
    title: 'A write to a read-only VMA is not handled speculatively',
    points: 10,
    category: 'robustness',
    parent: 'spec-first-touch',
    description:
      'A store to a VMA without PROT_WRITE (its page present read-only) must end in SIGSEGV with ACCERR, as on the classic path.',
    run(ctx) {
      const paths = studentSpf(ctx);
      let sig = 'none';
      runOnSystem(bootSpf(paths), function* (u) {
        yield* mapAnon(u, A, 2);
        yield* u.store8(A, 1);
        yield* u.store8(A + P, 1);
        yield* u.mprotect(A, 2 * P, PROT_READ);
        const info = yield* catching(u, function* () {
          yield* u.store8(A + P, 2);
        });
        sig = info ? `${info.signal} ${info.code} ${hex(info.address)}` : 'none';
      } as Program);
      expectEq(sig, `SIGSEGV ACCERR ${hex(A + P)}`, 'the signal of a store to a read-only page');
    },
  },
  {
    id: 'spec-hole',
    title: 'An address below the VMA found is not handled speculatively',
    points: 10,
    category: 'robustness',
    parent: 'spec-first-touch',
    description:
      'find_vma returns the first VMA ending above the address, which may start above it: a store into a hole between two VMAs must end in SIGSEGV with MAPERR.',
    run(ctx) {
      const paths = studentSpf(ctx);
      let sig = 'none';
      runOnSystem(bootSpf(paths), function* (u) {
        yield* mapAnon(u, A, 4);
        yield* u.store8(A, 1);
        yield* u.store8(A + 3 * P, 1);
        yield* u.munmap(A + P, P); // a hole at A + P, below the VMA [A + 2P, A + 4P)
        const info = yield* catching(u, function* () {
          yield* u.store8(A + P, 2);
        });
        sig = info ? `${info.signal} ${info.code} ${hex(info.address)}` : 'none';
      } as Program);
      expectEq(sig, `SIGSEGV MAPERR ${hex(A + P)}`, 'the signal of a store into the hole');
    },
  },
  {
    id: 'spec-vs-munmap',
    title: 'Speculative stores against munmap',
    points: 15,
    category: 'concurrency',
    parent: 'spec-first-touch',
    timeoutMs: 20_000,
    description:
      'A thread stores to fresh pages while the other unmaps the whole region (its page tables are freed). Explored: no page may be mapped into a region munmap already zapped, nothing may be read after it was freed.',
    run(ctx) {
      const paths = studentSpf(ctx);
      checkSchedules(
        raceScenario(
          paths,
          region,
          function* (u) {
            yield* u.munmap(A, N * P);
          },
          storer,
        ),
        LAB4_SEARCH['spec-vs-munmap'],
        'speculative stores against munmap leave the mm consistent',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'spec-vs-mprotect',
    title: 'Speculative stores against mprotect',
    points: 15,
    category: 'concurrency',
    parent: 'spec-first-touch',
    timeoutMs: 20_000,
    description:
      'A thread stores to fresh pages while the other makes the region read-only. Explored: no page may end up writable in a read-only VMA.',
    run(ctx) {
      const paths = studentSpf(ctx);
      checkSchedules(
        raceScenario(
          paths,
          region,
          function* (u) {
            yield* u.mprotect(A, N * P, PROT_READ);
          },
          storer,
        ),
        LAB4_SEARCH['spec-vs-mprotect'],
        'speculative stores against mprotect never leave a writable PTE in a read-only VMA',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'spec-vs-mremap',
    title: 'Speculative stores against mremap',
    points: 10,
    category: 'concurrency',
    parent: 'spec-first-touch',
    timeoutMs: 20_000,
    description:
      'A thread stores to fresh pages while the other moves the region elsewhere with mremap (a page above it stays, in the same page table), then waits for it. Explored: no page may be left mapped where no VMA is any more.',
    run(ctx) {
      const paths = studentSpf(ctx);
      // mremap's caller waits for the storer (each schedule starts a new one), so that the stores a schedule
      // puts after the move (into the old range, a hole now) are made too, not cut off by the exit: a fault
      // that takes the moved VMA for the old address maps a page outside it whenever the storer is slower.
      let done = false;
      let joined = new WaitQueue('join');
      checkSchedules(
        raceScenario(
          paths,
          function* (u) {
            done = false;
            joined = new WaitQueue('join');
            yield* region(u);
            // A page above the region, in the same page table: the move leaves that table in place.
            yield* mapAnon(u, A + (N + 1) * P, 1);
            yield* u.store8(A + (N + 1) * P, 1);
          },
          function* (u) {
            yield* u.mremap(A, N * P, N * P, MREMAP_MAYMOVE | MREMAP_FIXED, B);
            yield* block(joined, () => done, 'join');
          },
          function* (t) {
            try {
              yield* storer(t);
            } finally {
              done = true;
              yield* wake(joined);
            }
          },
        ),
        LAB4_SEARCH['spec-vs-mremap'],
        'speculative stores against mremap leave the mm consistent',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'spec-vs-cow-flush',
    title: 'The PTE lock with interrupts off',
    points: 15,
    category: 'concurrency',
    parent: 'spec-first-touch',
    timeoutMs: 20_000,
    description:
      'CPU 0 breaks COW on the zero page (it flushes the TLBs holding the PTE lock, and waits for every CPU to answer its IPI) while CPU 1 faults speculatively in the same page table. Explored: both finish.',
    run(ctx) {
      const paths = studentSpf(ctx);
      checkSchedules(
        raceScenario(
          paths,
          function* (u) {
            yield* mapAnon(u, A, 3);
            yield* u.store8(A + 2 * P, 1);
            yield* u.load8(A); // page 0 maps the zero page
          },
          function* (u) {
            yield* u.store8(A, 5);
          },
          function* (t) {
            yield* t.load8(A + P);
          },
        ),
        LAB4_SEARCH['spec-vs-cow-flush'],
        'a speculative fault and a COW flush both finish',
        { schedule: ctx.schedule },
      );
    },
  },
];
