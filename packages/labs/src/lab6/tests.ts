import { POSIX_FADV_DONTNEED, type System, type UserContext } from '@spf/kernel';
import { kassert, type Machine } from '@spf/machine';
import { MAP_FIXED, MAP_SHARED, PROT_READ } from '@spf/vma';
import { TestFailure } from '../lab-errors.js';
import type { LabTest } from '../lab.js';
import { checkSchedules } from '../lab2/explorer-check.js';
import { ANON_FIXED, expectEq, hex, type Program, runOnSystem, RW } from '../lab3/kernel-harness.js';
import {
  bootLab6,
  catching,
  fileByte,
  type Lab6Paths,
  preparedFile,
  SLOW_DISK_NS,
  studentPaths,
  untilDiskBusy,
  WAIT_THRESHOLD_NS,
} from './harness.js';

const A = 0x5000_0000; // 2 MiB aligned: unmapping the whole region frees its page tables
const C = 0x7000_0000;
const P = 4096;
const sig = (info: { signal: string; code: string; address: number } | null) =>
  info === null ? 'none' : `${info.signal} ${info.code} ${hex(info.address)}`;

/** mmap(A, pages, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0), failing the test if it fails. */
function* mapFile(u: UserContext, fd: number, pages: number): Generator<unknown, void, unknown> {
  const r = yield* u.mmap(A, pages * P, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  if (!r.ok) throw new TestFailure(`mmap of the file failed with errno ${r.errno}`);
}

/** How long an mmap + munmap of one anonymous page at C waits, in simulated ns. */
function* timedMmap(u: UserContext): Generator<unknown, number, unknown> {
  const t0 = yield* u.clock();
  const r = yield* u.mmap(C, P, RW, ANON_FIXED);
  const t1 = yield* u.clock();
  if (!r.ok) throw new TestFailure(`mmap failed with errno ${r.errno}`);
  yield* u.munmap(C, P);
  return t1 - t0;
}

/** Fails unless the run stopped for the step limit: then says it is a livelock, and how many reads it made. */
function runLivelockChecked(sys: System, program: Program, what: string): void {
  sys.spawnProcess('lab', program);
  const r = sys.run();
  if (!r.ok && r.failure?.kind === 'step-limit') {
    const reads = sys.fs.device.stats.reads;
    throw new TestFailure(
      `livelock: the run hit the machine's step limit while ${what}; the disk was read ${reads} times: the fault retried again and again`,
      {
        expected: 'the retried fault (FAULT_FLAG_TRIED) keeps mmap_lock and finishes: here with SIGBUS',
        actual: `step limit reached after ${reads} disk reads (is FAULT_FLAG_TRIED set before the retry?)`,
      },
    );
  }
  if (!r.ok) {
    throw new TestFailure(`the run stopped: ${r.failure?.kind}: ${r.failure?.message}`, {
      expected: 'the program runs to its end with the mm invariants intact',
      actual: `${r.failure?.kind}: ${r.failure?.message}`,
    });
  }
}

/**
 * The race of a thread's major fault against another thread's munmap (or mmap over it) of the file's
 * mapping, started while the read is in flight. The file's fd is closed first, so the VMA holds the file's
 * last reference apart from the fault's own pin. `replace` maps anonymous memory over the range instead of
 * unmapping it (and writes 0x77 at A + 5).
 */
function ioRaceScenario(paths: Lab6Paths, replace: boolean) {
  return {
    cpus: 2,
    maxSteps: 400_000,
    setup(m: Machine) {
      const sys = bootLab6(paths, { machine: m });
      const seen: { value: number | null; signal: string; pages: string; umount: string; other: string } = {
        value: null,
        signal: '?',
        pages: '?',
        umount: '?',
        other: '?',
      };
      sys.spawnProcess('race', function* (u) {
        const fd = yield* preparedFile(u, 'race', 4);
        yield* mapFile(u, fd, 4);
        yield* u.close(fd);
        let done = false;
        yield* u.spawnThread(
          function* (t) {
            yield* untilDiskBusy(t);
            if (replace) {
              const r = yield* t.mmap(A, 4 * P, RW, ANON_FIXED);
              seen.other = r.ok ? 'mmap ok' : `mmap errno ${r.errno}`;
              yield* t.store8(A + 5, 0x77);
            } else {
              const r = yield* t.munmap(A, 4 * P);
              seen.other = r.ok ? 'munmap ok' : `munmap errno ${r.errno}`;
            }
            done = true;
          } as Program,
          1,
        );
        const info = yield* catching(u, function* () {
          seen.value = yield* u.load8(A + 5);
        });
        seen.signal = sig(info);
        while (!done) yield* u.schedYield();
        if (replace) {
          seen.value = seen.value ?? -1;
          seen.pages = u.pagemap(A);
        } else {
          seen.pages = [0, 1, 2, 3].map((i) => u.pagemap(A + i * P)).join('');
        }
        if (replace) yield* u.munmap(A, 4 * P);
        const um = yield* u.umount();
        seen.umount = um.ok ? 'ok' : `errno ${um.errno}`;
      } as Program);
      return () => {
        const st = sys.processes[0].status;
        kassert(
          st !== null && st.kind === 'exited',
          `the process did not exit normally: ${sys.log.join('; ')}`,
        );
        const fileValue = fileByte(0, 5);
        if (replace) {
          kassert(
            (seen.value === fileValue || seen.value === 0x77 || seen.value === 0) && seen.signal === 'none',
            `the load at ${hex(A + 5)} read ${seen.value} (${seen.signal}); expected ${fileValue} (the file, if its fault finished before the mmap) or what the anonymous memory mapped over it holds (0, or 0x77 once the other thread wrote it): did the retried fault use the old VMA?`,
          );
        } else {
          kassert(
            (seen.value === fileValue && seen.signal === 'none') ||
              (seen.value === null && seen.signal === `SIGSEGV MAPERR ${hex(A + 5)}`),
            `the load at ${hex(A + 5)} gave value ${seen.value}, signal ${seen.signal}; expected ${fileValue} (its fault finished before munmap) or SIGSEGV MAPERR (the mapping was gone when the fault retried)`,
          );
          kassert(
            seen.pages === '....',
            `after munmap the pages of [${hex(A)}, ${hex(A + 4 * P)}) show '${seen.pages}' in pagemap; nothing may stay mapped`,
          );
        }
        kassert(
          seen.umount === 'ok',
          `umount after every mapping and fd of the file is gone said ${seen.umount}: a reference to the file was never dropped (the pin of the fault?)`,
        );
        const problems = sys.invariantProblems();
        kassert(problems.length === 0, `after the process exited: ${problems.join('; ')}`);
      };
    },
  };
}

/** Lab 6's graded tests (100 points). */
export const lab6Tests: readonly LabTest[] = [
  {
    id: 'anon-faults',
    title: 'The retry loop handles ordinary faults',
    points: 10,
    category: 'functionality',
    timeoutMs: 10_000,
    description:
      'Every fault goes through your loop: a store and a read of fresh anonymous memory are handled (two minor faults), a load from an unmapped address gets SIGSEGV MAPERR, a store to a read-only page SIGSEGV ACCERR.',
    run(ctx) {
      const paths = studentPaths(ctx);
      const seen: Record<string, number | string> = {};
      runOnSystem(bootLab6(paths), function* (u) {
        const r = yield* u.mmap(A, 2 * P, RW, ANON_FIXED);
        if (!r.ok) throw new TestFailure(`mmap failed with errno ${r.errno}`);
        yield* u.store8(A + 1, 5);
        seen.v = yield* u.load8(A + 1);
        seen.z = yield* u.load8(A + P);
        seen.faults = `${u.rusage().minflt} minor, ${u.rusage().majflt} major`;
        seen.maperr = sig(
          yield* catching(u, function* () {
            yield* u.load8(C);
          }),
        );
        yield* u.mprotect(A, P, PROT_READ);
        seen.accerr = sig(
          yield* catching(u, function* () {
            yield* u.store8(A, 1);
          }),
        );
      } as Program);
      expectEq(seen.v, 5, 'the stored byte reads back');
      expectEq(seen.z, 0, 'a fresh page reads 0');
      expectEq(seen.maperr, `SIGSEGV MAPERR ${hex(C)}`, 'a load from an address no VMA covers');
      expectEq(seen.accerr, `SIGSEGV ACCERR ${hex(A)}`, 'a store to a read-only VMA');
      expectEq(seen.faults, '2 minor, 0 major', 'faults counted (getrusage) after the store and the read');
    },
  },
  {
    id: 'file-contents',
    title: 'A mapped file reads its contents after eviction',
    points: 10,
    category: 'functionality',
    parent: 'anon-faults',
    timeoutMs: 10_000,
    description:
      'A file written, written back and dropped from the page cache is mapped and read: every page reads what was written (the fault read it from the disk, dropping mmap_lock if you did part 1).',
    run(ctx) {
      const paths = studentPaths(ctx);
      const got: string[] = [];
      const want: string[] = [];
      runOnSystem(bootLab6(paths), function* (u) {
        const fd = yield* preparedFile(u, 'contents', 8);
        yield* mapFile(u, fd, 8);
        yield* u.close(fd);
        for (const i of [0, 3, 7, 1]) {
          for (const off of [0, 100, 4095]) {
            got.push(`${i}:${off}=${yield* u.load8(A + i * P + off)}`);
            want.push(`${i}:${off}=${fileByte(i, off)}`);
          }
        }
        got.push(u.pagemap(A + 7 * P));
        want.push('F');
      } as Program);
      expectEq(
        got.join(' '),
        want.join(' '),
        'bytes read through the mapping (page:offset=value), then pagemap',
      );
    },
  },
  {
    id: 'major-after-evict',
    title: 'A read after eviction is one major fault',
    points: 15,
    category: 'functionality',
    parent: 'file-contents',
    timeoutMs: 10_000,
    description:
      'getrusage counts the first read of an evicted page as exactly one major fault (the attempt that read the disk returned VM_FAULT_RETRY and is counted when its retry completes), and a read of a page still cached as one minor fault.',
    run(ctx) {
      const paths = studentPaths(ctx);
      const steps: string[] = [];
      runOnSystem(bootLab6(paths), function* (u) {
        const fd = yield* preparedFile(u, 'major', 8);
        const count = () => `${u.rusage().majflt}/${u.rusage().minflt}`;
        yield* mapFile(u, fd, 8);
        steps.push(`start ${count()}`);
        yield* u.load8(A + 2 * P);
        steps.push(`evicted page ${count()}`);
        yield* u.munmap(A, 8 * P);
        yield* mapFile(u, fd, 8);
        yield* u.load8(A + 5 * P);
        steps.push(`cached page ${count()}`);
        yield* u.munmap(A, 8 * P);
        yield* u.posixFadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        yield* mapFile(u, fd, 8);
        yield* u.load8(A + 6 * P);
        steps.push(`evicted again ${count()}`);
      } as Program);
      expectEq(
        steps.join(', '),
        'start 0/0, evicted page 1/0, cached page 1/1, evicted again 2/1',
        'major/minor faults (getrusage) after each step',
      );
    },
  },
  {
    id: 'bad-block-sigbus',
    title: 'A page the disk cannot read: SIGBUS, not a retry forever',
    points: 10,
    category: 'robustness',
    parent: 'file-contents',
    timeoutMs: 20_000,
    description:
      'The disk fails to read one page of the file. The first attempt drops mmap_lock, reads, fails and retries; the retry (FAULT_FLAG_TRIED) must keep the lock, read once more and give up with SIGBUS. A retry without FAULT_FLAG_TRIED drops the lock and retries again, forever: the machine stops it at its step limit.',
    run(ctx) {
      const paths = studentPaths(ctx);
      const seen: string[] = [];
      const sys = bootLab6(paths, { maxSteps: 20_000 });
      runLivelockChecked(
        sys,
        function* (u) {
          const fd = yield* preparedFile(u, 'bad', 4);
          const inode = u.system.fs.lookup('bad');
          if (inode === null) throw new TestFailure('the file /mnt/bad is missing');
          inode.badPages.add(2);
          yield* mapFile(u, fd, 4);
          yield* u.close(fd);
          seen.push(`page 0 reads ${yield* u.load8(A)}`);
          seen.push(
            sig(
              yield* catching(u, function* () {
                yield* u.load8(A + 2 * P + 9);
              }),
            ),
          );
          seen.push(`page 3 reads ${yield* u.load8(A + 3 * P)}`);
        } as Program,
        `the program read the page at ${hex(A + 2 * P)} that the disk cannot read`,
      );
      expectEq(
        seen.join(', '),
        `page 0 reads ${fileByte(0, 0)}, SIGBUS ADRERR ${hex(A + 2 * P + 9)}, page 3 reads ${fileByte(3, 0)}`,
        'what the program saw',
      );
    },
  },
  {
    id: 'lock-dropped-during-io',
    title: 'mmap does not wait for another thread’s disk read',
    points: 20,
    category: 'concurrency',
    parent: 'file-contents',
    timeoutMs: 20_000,
    description: `On a slow disk (${SLOW_DISK_NS / 1000} us per read), one thread's fault waits for the disk while another thread calls mmap (which takes mmap_lock for writing). Timed in simulated time, so the figure is the same on every run: the mmap may wait at most ${WAIT_THRESHOLD_NS / 1000} us (a tenth of the read). Twice: during a major fault's read, and while a fault sleeps on the lock of a page that pread(2) is reading.`,
    run(ctx) {
      const paths = studentPaths(ctx);
      const waits: Record<string, number> = {};
      const values: string[] = [];
      // (a) the faulting thread reads the disk itself.
      runOnSystem(bootLab6(paths, { latencyNs: SLOW_DISK_NS }), function* (u) {
        const fd = yield* preparedFile(u, 'slow', 4);
        yield* mapFile(u, fd, 4);
        let done = false;
        yield* u.spawnThread(
          function* (t) {
            yield* untilDiskBusy(t);
            waits.major = yield* timedMmap(t);
            done = true;
          } as Program,
          1,
        );
        values.push(`major fault read ${yield* u.load8(A + 9)}`);
        while (!done) yield* u.schedYield();
      } as Program);
      // (b) the faulting thread sleeps on the lock of a page another thread's pread is reading.
      runOnSystem(bootLab6(paths, { latencyNs: SLOW_DISK_NS, cpus: 3 }), function* (u) {
        const fd = yield* preparedFile(u, 'locked', 4);
        yield* mapFile(u, fd, 4);
        let faulting = false;
        let done = 0;
        yield* u.spawnThread(
          function* (t) {
            yield* untilDiskBusy(t);
            faulting = true;
            values.push(`fault on a locked page read ${yield* t.load8(A + P + 9)}`);
            done++;
          } as Program,
          1,
        );
        yield* u.spawnThread(
          function* (t) {
            while (!faulting) yield* t.schedYield();
            for (let i = 0; i < 3; i++) yield* t.schedYield();
            waits.pageLock = yield* timedMmap(t);
            done++;
          } as Program,
          2,
        );
        const r = yield* u.pread(fd, 0, 4 * P);
        if (!r.ok) throw new TestFailure(`pread failed with errno ${r.errno}`);
        while (done < 2) yield* u.schedYield();
      } as Program);
      expectEq(
        values.join(', '),
        `major fault read ${fileByte(0, 9)}, fault on a locked page read ${fileByte(1, 9)}`,
        'the bytes the faulting threads read',
      );
      ctx.log(
        `mmap waited ${waits.major} ns during a major fault's read, ${waits.pageLock} ns during a wait for a page lock (threshold ${WAIT_THRESHOLD_NS} ns, disk ${SLOW_DISK_NS} ns)`,
      );
      for (const [what, key] of [
        ["during a major fault's disk read", 'major'],
        ['while a fault slept on a page lock', 'pageLock'],
      ] as const) {
        if (!(waits[key] <= WAIT_THRESHOLD_NS)) {
          throw new TestFailure(`mmap waited ${waits[key]} ns for mmap_lock ${what}`, {
            expected: `at most ${WAIT_THRESHOLD_NS} ns (a tenth of the ${SLOW_DISK_NS} ns read): the fault drops mmap_lock before it waits`,
            actual: `${waits[key]} ns: the fault kept mmap_lock while it waited for the disk`,
          });
        }
      }
    },
  },
  {
    id: 'munmap-during-io',
    title: 'munmap while the fault waits for the disk',
    points: 20,
    category: 'concurrency',
    parent: 'anon-faults',
    timeoutMs: 20_000,
    description:
      "A thread reads an evicted page of a file whose fd is closed; once the read is in flight, another thread unmaps the file. The fault must come back to a world without its VMA: SIGSEGV MAPERR (or the file's byte, if it finished first), nothing left mapped, no use of the file after its last reference went, and none leaked (umount succeeds).",
    run(ctx) {
      const paths = studentPaths(ctx);
      checkSchedules(
        ioRaceScenario(paths, false),
        { policy: 'timed' },
        'munmap during the I/O of a fault leaves nothing mapped and the file freed once',
        { schedule: ctx.schedule },
      );
    },
  },
  {
    id: 'mmap-replaced-during-io',
    title: 'The mapping is replaced while the fault waits',
    points: 15,
    category: 'concurrency',
    parent: 'anon-faults',
    timeoutMs: 20_000,
    description:
      'Once the read is in flight, another thread maps anonymous memory over the file (mmap MAP_FIXED) and writes 0x77 there. The retried fault must look the VMA up again and fault in the new anonymous memory (the load reads 0 or 0x77, never the file), and the file, unmapped, must be released once (umount succeeds).',
    run(ctx) {
      const paths = studentPaths(ctx);
      checkSchedules(
        ioRaceScenario(paths, true),
        { policy: 'timed' },
        'a fault retried after its VMA was replaced uses the new VMA',
        { schedule: ctx.schedule },
      );
    },
  },
];
