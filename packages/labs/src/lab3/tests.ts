import type { UserContext } from '@spf/kernel';
import { type ExploreOptions, kassert, type Machine } from '@spf/machine';
import { MM_ANONPAGES, PROT_READ } from '@spf/vma';
import { TestFailure } from '../lab-errors.js';
import type { LabTest } from '../lab.js';
import { checkSchedules } from '../lab2/explorer-check.js';
import {
  bootWithPaths,
  expectEq,
  hex,
  LAB_MEMORY,
  mapAnon,
  type Program,
  runProgram,
  RW,
  studentPteFaultPaths,
} from './kernel-harness.js';

const A = 0x5000_0000;
const P = 4096;

const anonRss = (u: UserContext): number => u.process.mm.rss[MM_ANONPAGES];

/**
 * How each explored test searches, by test id. Each schedule boots a kernel, so the budgets are small; each
 * known-buggy variant must still be caught at (nearly) every seed, not only at the one fixed here:
 * `bench/budget-robustness.ts` measures it (README).
 */
export const LAB3_SEARCH: Record<string, ExploreOptions> = {
  'same-page-race': { policy: 'random', runs: 40, seed: 5 },
  'cow-tlb-flush': { policy: 'random', runs: 10, seed: 2 },
};

/** Lab 3's graded tests (100 points). */
export const lab3Tests: readonly LabTest[] = [
  {
    id: 'first-touch-write',
    title: 'First touch by a write',
    points: 10,
    category: 'functionality',
    description:
      'A store to fresh anonymous memory faults once, maps a private page of its own, and the value reads back; the rest of the page reads 0.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number | string> = {};
      runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 1);
        yield* u.store8(A + 5, 42);
        seen.value = yield* u.load8(A + 5);
        seen.other = yield* u.load8(A + 6);
        seen.faults = u.rusage().minflt;
        seen.page = u.pagemap(A);
      } as Program);
      expectEq(seen.value, 42, `the byte stored at ${hex(A + 5)} reads back`);
      expectEq(seen.other, 0, 'the rest of a fresh page reads 0 (zero-filled)');
      expectEq(seen.page, 'A', 'pagemap after the store: a private anonymous page (A)');
      expectEq(seen.faults, 1, 'minor faults: the store faults once, the loads after it not at all');
    },
  },
  {
    id: 'first-touch-read',
    title: 'First touch by a read: the zero page',
    points: 10,
    category: 'functionality',
    description:
      'A load from fresh anonymous memory reads 0 through the shared zero page: no page is allocated for it, and a second page read the same way shares it.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number | string> = {};
      runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 3);
        yield* u.store8(A, 1); // the page tables now exist
        const free = u.system.mem.freeCount;
        seen.v1 = yield* u.load8(A + P + 7);
        seen.v2 = yield* u.load8(A + 2 * P);
        seen.allocated = free - u.system.mem.freeCount;
        seen.p1 = u.pagemap(A + P);
        seen.p2 = u.pagemap(A + 2 * P);
        seen.faults = u.rusage().minflt;
      } as Program);
      expectEq(seen.v1, 0, 'a read of fresh memory returns 0');
      expectEq(seen.v2, 0, 'a read of another fresh page returns 0');
      expectEq(seen.p1, 'Z', 'pagemap after the read: the shared zero page (Z)');
      expectEq(seen.p2, 'Z', 'pagemap of the second page read: the zero page too');
      expectEq(seen.allocated, 0, 'frames allocated by two read faults');
      expectEq(seen.faults, 3, 'minor faults (one store, two loads)');
    },
  },
  {
    id: 'write-after-read',
    title: 'Write after read (copy-on-write of the zero page)',
    points: 15,
    category: 'functionality',
    parent: 'first-touch-read',
    description:
      'A store to a page that maps the zero page faults again (do_wp_page) and gets a private zeroed page; the zero page itself stays all zeros for every other page.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number | string> = {};
      runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 3);
        yield* u.load8(A);
        yield* u.load8(A + P);
        yield* u.store8(A + 9, 7);
        seen.v = yield* u.load8(A + 9);
        seen.rest = yield* u.load8(A + 10);
        seen.p0 = u.pagemap(A);
        seen.p1 = u.pagemap(A + P);
        seen.other = yield* u.load8(A + P + 9);
        seen.fresh = yield* u.load8(A + 2 * P + 9);
        seen.faults = u.rusage().minflt;
      } as Program);
      expectEq(seen.v, 7, 'the stored byte reads back');
      expectEq(seen.rest, 0, 'the rest of the new page is zero');
      expectEq(seen.p0, 'A', 'pagemap of the written page: a private anonymous page (A), not the zero page');
      expectEq(
        seen.other,
        0,
        'another page that maps the zero page still reads 0 (did the store land in the zero page?)',
      );
      expectEq(seen.p1, 'Z', 'pagemap of the page only read: still the zero page');
      expectEq(seen.fresh, 0, 'a page read for the first time afterwards reads 0');
      expectEq(seen.faults, 4, 'minor faults (two reads, the write to the zero page, the third read)');
    },
  },
  {
    id: 'rss-counts',
    title: 'RSS counts the anonymous pages',
    points: 10,
    category: 'functionality',
    description:
      "The process's anonymous RSS (MM_ANONPAGES) counts every page it was given: by a first write or by a write after read, never the zero page; after munmap it is 0 and every frame is free again.",
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number> = {};
      const sys = runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 8);
        for (let i = 0; i < 3; i++) yield* u.store8(A + i * P, i + 1);
        seen.afterWrites = anonRss(u);
        for (let i = 3; i < 6; i++) yield* u.load8(A + i * P);
        seen.afterReads = anonRss(u);
        yield* u.store8(A + 4 * P, 9);
        seen.afterCow = anonRss(u);
        yield* u.munmap(A, 8 * P);
        seen.afterUnmap = anonRss(u);
      } as Program);
      expectEq(seen.afterWrites, 3, 'MM_ANONPAGES after first writes to 3 pages');
      expectEq(seen.afterReads, 3, 'MM_ANONPAGES after reading 3 more (the zero page is not counted)');
      expectEq(seen.afterCow, 4, 'MM_ANONPAGES after a write to one of the pages read (a new page)');
      expectEq(seen.afterUnmap, 0, 'MM_ANONPAGES after munmap of everything');
      // Once every process has exited, every frame allocated since boot must be free again (a leak check).
      const problems = sys.invariantProblems();
      if (problems.length > 0) throw new TestFailure(`after the process exited: ${problems.join('; ')}`);
    },
  },
  {
    id: 'cow-after-fork',
    title: 'Copy-on-write after fork: each process sees its own writes',
    points: 15,
    category: 'functionality',
    parent: 'first-touch-write',
    description:
      "After fork, parent and child share the page read-only. The child's write gets it a copy; the parent still reads its own value, and the parent's later write is not seen by the child.",
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number> = {};
      let childDone = false;
      let parentWrote = false;
      runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 1);
        yield* u.store8(A, 42);
        yield* u.store8(A + 1, 43);
        const pid = yield* u.fork(function* (c) {
          seen.childBefore = yield* c.load8(A);
          yield* c.store8(A, 7);
          seen.childOwn = yield* c.load8(A);
          childDone = true;
          while (!parentWrote) yield* c.schedYield();
          seen.childAfterParent = yield* c.load8(A + 1);
        }, 1);
        if (!pid.ok) throw new TestFailure(`fork failed with errno ${pid.errno}`);
        while (!childDone) yield* u.schedYield();
        seen.parentAfterChild = yield* u.load8(A);
        yield* u.store8(A + 1, 99);
        parentWrote = true;
        seen.parentOwn = yield* u.load8(A + 1);
        yield* u.wait(pid.value);
      } as Program);
      expectEq(seen.childBefore, 42, 'the child reads what the parent wrote before fork');
      expectEq(seen.childOwn, 7, 'the child reads its own write');
      expectEq(
        seen.parentAfterChild,
        42,
        "the parent's page after the child wrote 7 (the child must get a copy)",
      );
      expectEq(seen.parentOwn, 99, 'the parent reads its own write');
      expectEq(
        seen.childAfterParent,
        43,
        "the child's page after the parent wrote 99 (the parent's write must not reach the child's copy)",
      );
    },
  },
  {
    id: 'cow-reuse',
    title: 'An exclusive page is reused, not copied',
    points: 10,
    category: 'functionality',
    parent: 'cow-after-fork',
    description:
      'When nobody else maps the page any more (the child exited, or the PTE was only write-protected by mprotect), a write fault makes the PTE writable again in place: no copy, no new frame.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      const seen: Record<string, number | string> = {};
      runProgram(paths, function* (u) {
        yield* mapAnon(u, A, 2);
        yield* u.store8(A, 1);
        yield* u.store8(A + P, 2);
        const pid = yield* u.fork(function* (c) {
          yield* c.load8(A);
        }, 1);
        if (!pid.ok) throw new TestFailure(`fork failed with errno ${pid.errno}`);
        yield* u.wait(pid.value);
        let free = u.system.mem.freeCount;
        const copies = u.system.vmstat.cowCopies;
        yield* u.store8(A, 5);
        seen.afterFork = free - u.system.mem.freeCount;
        seen.copiesFork = u.system.vmstat.cowCopies - copies;
        seen.v = yield* u.load8(A);
        yield* u.mprotect(A + P, P, PROT_READ);
        yield* u.mprotect(A + P, P, RW);
        free = u.system.mem.freeCount;
        yield* u.store8(A + P, 6);
        seen.afterMprotect = free - u.system.mem.freeCount;
        seen.w = yield* u.load8(A + P);
        seen.copies = u.system.vmstat.cowCopies - copies;
        seen.p = u.pagemap(A + P);
      } as Program);
      expectEq(seen.v, 5, 'the write after the child exited reads back');
      expectEq(seen.copiesFork, 0, 'COW copies for a write to a page the exited child no longer maps');
      expectEq(seen.afterFork, 0, 'frames allocated by that write');
      expectEq(
        seen.w,
        6,
        'the write after mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE) reads back',
      );
      expectEq(seen.afterMprotect, 0, 'frames allocated by the write after the two mprotects');
      expectEq(seen.copies, 0, 'COW copies in all');
      expectEq(seen.p, 'A', 'pagemap of the reused page');
    },
  },
  {
    id: 'same-page-race',
    title: 'Two threads fault the same page',
    points: 15,
    category: 'concurrency',
    parent: 'rss-counts',
    timeoutMs: 15_000,
    description:
      'Two threads on two CPUs store to the same fresh page at once (explored): exactly one page is mapped, both stores are in it, RSS counts one page, and nothing leaks.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      checkSchedules(
        {
          cpus: 2,
          maxSteps: 200_000,
          setup(m: Machine) {
            const sys = bootWithPaths(paths, { machine: m, memory: LAB_MEMORY });
            const seen: number[] = [];
            let rss = -1;
            sys.spawnProcess('race', function* (u) {
              yield* mapAnon(u, A, 2);
              yield* u.store8(A + P, 9); // the anon_vma and the page tables exist now
              let done = false;
              yield* u.spawnThread(
                function* (t) {
                  yield* t.store8(A, 1);
                  done = true;
                } as Program,
                1,
              );
              yield* u.store8(A + 1, 2);
              while (!done) yield* u.schedYield();
              seen.push(yield* u.load8(A), yield* u.load8(A + 1));
              rss = anonRss(u);
            } as Program);
            return () => {
              const st = sys.processes[0].status;
              kassert(
                st !== null && st.kind === 'exited',
                `the process did not exit normally: ${sys.log.join('; ')}`,
              );
              kassert(
                seen[0] === 1 && seen[1] === 2,
                `after both stores the page reads [${seen.join(', ')}], expected [1, 2]: one store went to a page that was thrown away`,
              );
              kassert(rss === 2, `MM_ANONPAGES is ${rss} with 2 pages mapped`);
              const problems = sys.invariantProblems();
              kassert(problems.length === 0, `after the process exited: ${problems.join('; ')}`);
            };
          },
        },
        LAB3_SEARCH['same-page-race'],
        'two concurrent first touches of one page map one page',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'cow-tlb-flush',
    title: 'Breaking COW flushes the other CPUs’ TLBs',
    points: 15,
    category: 'concurrency',
    parent: 'cow-after-fork',
    timeoutMs: 15_000,
    description:
      'A thread on CPU 1 keeps reading a page that the thread on CPU 0 then writes (a COW copy, the child still maps the old page). Once the write is done, the reader must see it: no CPU may keep the old page in its TLB.',
    run(ctx) {
      const paths = studentPteFaultPaths(ctx);
      checkSchedules(
        {
          cpus: 3,
          maxSteps: 200_000,
          setup(m: Machine) {
            const sys = bootWithPaths(paths, { machine: m, memory: LAB_MEMORY });
            let late = -1;
            sys.spawnProcess('mtcow', function* (u) {
              yield* mapAnon(u, A, 1);
              yield* u.store8(A, 1);
              let stop = false;
              let readerDone = false;
              let childGo = false;
              yield* u.spawnThread(
                function* (t) {
                  while (!stop) {
                    yield* t.load8(A); // caches the translation in CPU 1's TLB
                    yield* t.schedYield();
                  }
                  late = yield* t.load8(A);
                  readerDone = true;
                } as Program,
                1,
              );
              const pid = yield* u.fork(
                function* (c) {
                  while (!childGo) yield* c.schedYield(); // keeps the old page mapped
                } as Program,
                2,
              );
              if (!pid.ok) throw new TestFailure(`fork failed with errno ${pid.errno}`);
              yield* u.store8(A, 0x11); // the COW break
              stop = true;
              while (!readerDone) yield* u.schedYield();
              childGo = true;
              yield* u.wait(pid.value);
            } as Program);
            return () => {
              kassert(
                late === 0x11,
                `CPU 1 read ${hex(late)} after CPU 0's store of 0x11 had completed: it still used the old page through its TLB`,
              );
              const problems = sys.invariantProblems();
              kassert(problems.length === 0, `after the processes exited: ${problems.join('; ')}`);
            };
          },
        },
        LAB3_SEARCH['cow-tlb-flush'],
        'a thread reads the new copy once the COW write completed',
        { schedule: ctx.schedule },
      );
    },
  },
];
