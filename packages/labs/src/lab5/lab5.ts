import * as faultClassic from '@spf/fault-classic';
import * as faultSpec from '@spf/fault-spec';
import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import * as pagetable from '@spf/pagetable';
import * as vma from '@spf/vma';
import { constantsOf, omit } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab5Tests } from './tests.js';

/**
 * What Lab 5's code may not import from @spf/vma: the package's own `vma_start_read()` and
 * `vma_start_write()` (and `vma_assert_write_locked()`'s test). Everything else there is data structures,
 * syscalls and locks that cannot reach the answer: `@spf/vma`'s `vmaStartWrite` would run the student's own
 * code (the mm's paths), and the package's `lockVmaUnderRcu` is in @spf/fault-spec, of which only
 * constants are allowed.
 */
export const LAB5_VMA_WITHHELD = ['vmaStartRead', 'vmaStartWrite', 'vmaIsWriteLocked'] as const;

/**
 * Lab 5: per-VMA locks. The student writes Linux 6.4's `vma_start_read()`/`lock_vma_under_rcu()` and
 * `vma_start_write()`/`vma_end_write_all()` behind @spf/fault-spec's `perVmaLock({ paths })`; user programs
 * count faults under the VMA lock, and the explorer races them against mprotect, munmap, mremap and fork.
 */
export const lab5: Lab = {
  id: 'lab5',
  title: 'Lab 5: per-VMA locks',
  version: 2,
  summary:
    "Write both sides of Linux 6.4's per-VMA locks: the fault's lock_vma_under_rcu() with vma_start_read() (RCU lookup, the vm_lock_seq/mm_lock_seq comparison, down_read_trylock and the re-check after it, the range and detached checks, the fallback to mmap_lock) and the writers' vma_start_write() and vma_end_write_all(). Graded with user programs that count faults under the VMA lock, and by the explorer against mprotect, munmap, mremap and fork, where the 6.4 fork race is waiting.",
  injection: {
    package: '@spf/fault-spec',
    point:
      '`PerVmaLockPaths` via `perVmaLock({ paths: { lockVmaUnderRcu, vmaStartWrite, vmaEndWriteAll } })` (src/per-vma/per-vma-lock.ts); the writer paths reach @spf/vma as `MmConfig.vmaLocking.paths`',
  },
  files,
  buildsOn: ['lab3'],
  hints: [
    'Start with the writer, it is short: vmaEndWriteAll bumps mm.mmLockSeq (yield* mm.mmLockSeq.update((v) => v + 1)). vmaStartWrite returns early if vma.vmLockSeq already equals mm_lock_seq; otherwise it takes vma.vmLock for writing, stores mm_lock_seq into vma.vmLockSeq and releases the lock.',
    'The reader: yield* mm.rcu.readLock(), then mm.findVmaRcu(address). It returns the first VMA that ends above the address: check vmStart <= address too, or you will lock the VMA above a hole. 6.4 also gives up on VMAs that are not anonymous or have no anon_vma yet. Every way out must leave RCU (readUnlock) and count VMA_LOCK_ABORT when it returns null.',
    'vmaStartRead: compare vma.vmLockSeq with mm.mmLockSeq (equal: a writer marked it, return false), then vma.vmLock.downReadTrylock(). Never downRead(): you are inside rcu_read_lock(), and a writer may hold the lock.',
    'After the trylock, compare the two sequence numbers again: a writer may have marked the VMA and released its lock between your first look and your trylock (mremap does, and then moves the page tables under you). If they are equal now, upRead and fail.',
    'With the VMA locked: is the address still inside [vmStart, vmEnd) (a split may have shrunk it before you locked it)? Is vma.detached (munmap removed it)? Detached means another VMA may cover the address now: unlock, count VMA_LOCK_MISS and look up again.',
  ],
  tests: lab5Tests,
  buggyVariants: [
    {
      id: 'fork-race-6-4',
      description:
        "Linux 6.4.0's fork: dup_mmap() never write-locks the parent's VMAs, so a COW fault under the VMA lock copies the page while fork's TLB flush is pending (fixed in 6.4.y by \"fork: lock VMAs of the parent process when forking\").",
      file: 'vma-start-write.ts',
      patches: [
        [
          '  void site;\n',
          "  if (site === 'dupMmap') return; // as Linux 6.4.0: dup_mmap() does not lock the parent's VMAs\n",
        ],
      ],
      mustFail: 'pervma-vs-fork',
    },
    {
      id: 'no-recheck-after-trylock',
      description:
        'vma_start_read() compares vm_lock_seq with mm_lock_seq only before the trylock: a writer that marked the VMA in between is missed.',
      file: 'lock-vma-under-rcu.ts',
      patches: [
        [
          `  if ((yield* vma.vmLockSeq.load()) === (yield* mm.mmLockSeq.load())) {
    yield* vma.vmLock.upRead();
    return false;
  }
`,
          '',
        ],
      ],
      mustFail: 'pervma-vs-mremap',
    },
    {
      id: 'no-detached-check',
      description: 'lock_vma_under_rcu() never asks whether the VMA it locked was removed from the tree.',
      file: 'lock-vma-under-rcu.ts',
      patches: [
        [
          `    if (vma.detached) {
      yield* vma.vmLock.upRead();
      ctx.counters.VMA_LOCK_MISS++;
      continue;
    }
`,
          '',
        ],
      ],
      mustFail: 'pervma-vs-munmap',
    },
    {
      id: 'writer-does-not-set-seq',
      description:
        'vma_start_write() takes and releases the VMA lock but never sets vm_lock_seq: readers are only kept out while the writer holds the lock, not for the rest of its section.',
      file: 'vma-start-write.ts',
      patches: [['  yield* vma.vmLockSeq.store(mmLockSeq);\n', '']],
      mustFail: 'pervma-write-section',
    },
    {
      id: 'writer-does-not-wait-for-readers',
      description:
        'vma_start_write() sets vm_lock_seq without taking the VMA lock for writing: a fault that locked the VMA just before goes on under it while the writer changes the VMA.',
      file: 'vma-start-write.ts',
      patches: [
        ['  yield* vma.vmLock.downWrite();\n', ''],
        ['  yield* vma.vmLock.upWrite();\n', ''],
      ],
      mustFail: 'pervma-vs-mprotect',
    },
    {
      id: 'no-end-write-all',
      description:
        'vma_end_write_all() does nothing: every VMA a writer ever marked stays closed to the VMA lock for good.',
      file: 'vma-start-write.ts',
      patches: [['  yield* mm.mmLockSeq.update((v) => v + 1);\n', '  void mm;\n']],
      mustFail: 'pervma-faults',
    },
    {
      id: 'blocking-reader',
      description:
        'vma_start_read() takes the VMA lock with down_read() instead of down_read_trylock(): inside rcu_read_lock() it may sleep, waiting for a writer.',
      file: 'lock-vma-under-rcu.ts',
      patches: [
        [
          '  if (!(yield* vma.vmLock.downReadTrylock())) return false;\n',
          '  yield* vma.vmLock.downRead();\n',
        ],
      ],
      mustFail: 'pervma-faults',
    },
    {
      id: 'no-range-check',
      description:
        'lock_vma_under_rcu() does not check the address against the VMA once it is locked: a VMA split meanwhile now covers only the other half.',
      file: 'lock-vma-under-rcu.ts',
      patches: [
        [
          `    if (address < vma.vmStart || address >= vma.vmEnd) {
      yield* vma.vmLock.upRead();
      break;
    }
`,
          '',
        ],
      ],
      mustFail: 'pervma-vs-split',
    },
  ],
  // @spf/fault-spec holds the answer (the package's lock_vma_under_rcu and the handler without paths):
  // only its constants. @spf/vma without vma_start_read/vma_start_write (see LAB5_VMA_WITHHELD);
  // @spf/fault-classic and @spf/locks only their constants; the machine and @spf/pagetable whole.
  modules: () => ({
    '@spf/machine': probedNamespace(machine),
    '@spf/locks': constantsOf(locks),
    '@spf/pagetable': pagetable,
    '@spf/vma': omit(vma, LAB5_VMA_WITHHELD),
    '@spf/fault-classic': constantsOf(faultClassic),
    '@spf/fault-spec': constantsOf(faultSpec),
  }),
};
