import * as faultClassic from '@spf/fault-classic';
import * as fileBacked from '@spf/file-backed';
import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import * as pagetable from '@spf/pagetable';
import * as vma from '@spf/vma';
import { constantsOf, pick } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab6Tests } from './tests.js';

const FILE_ORDER = ['fault-retry.ts', 'filemap-retry.ts'];

/**
 * What Lab 6's code may use of @spf/fault-classic besides its constants: what do_user_addr_fault() and the
 * filemap pieces call in Linux. Never `doUserAddrFault`, `doUserAddrFaultRetry`, `mmAccountFault` or the
 * handlers (the answer to part 2). `handleMmFault` is handed over wrapped (see {@link lab6FaultClassic}).
 */
export const LAB6_FAULT_CLASSIC_HELPERS = [
  'accessError',
  'faultFlagAllowRetryFirst',
  'handleMmFault',
  'lockMmAndFindVma',
  'mmFaultOutcome',
  'releaseFaultLock',
] as const;

/**
 * @spf/fault-classic as Lab 6's code sees it. `handle_mm_fault()` accounts each attempt through the
 * environment's `userFaultPaths.mmAccountFault` (the student's); called with an environment stripped of
 * them it would account with the package's own, so the wrapper refuses that.
 */
function lab6FaultClassic(): Readonly<Record<string, unknown>> {
  const ns = pick(faultClassic, LAB6_FAULT_CLASSIC_HELPERS) as Record<string, unknown>;
  const handleMmFault: typeof faultClassic.handleMmFault = (env, ...rest) => {
    if (env?.userFaultPaths === undefined) {
      throw new TypeError(
        'handleMmFault: pass the environment your doUserAddrFaultRetry received (it carries your mmAccountFault)',
      );
    }
    return faultClassic.handleMmFault(env, ...rest);
  };
  return Object.freeze({ ...ns, handleMmFault });
}

/**
 * Lab 6: file faults and the retry. The student writes the pieces of `filemap_fault()` that drop mmap_lock
 * around I/O (behind @spf/file-backed's `FilemapRetryPaths`) and `do_user_addr_fault()`'s retry loop with
 * `mm_account_fault()` (behind @spf/fault-classic's `UserFaultPaths`); user programs with files on
 * @spf/kernel grade them, and the time an mmap waits for mmap_lock is measured in simulated time.
 */
export const lab6: Lab = {
  id: 'lab6',
  title: 'Lab 6: file faults and the retry',
  version: 1,
  summary:
    "Write the part of Linux's fault path that drops mmap_lock while a fault waits for the disk and retries: maybe_unlock_mmap_for_io(), lock_folio_maybe_drop_mmap() and out_retry in filemap_fault() (the file pinned across the drop), and do_user_addr_fault()'s retry loop with FAULT_FLAG_TRIED and mm_account_fault(). Graded with user programs on files (contents, major faults, a bad block), races of munmap and mmap against a fault waiting for the disk, and how long an mmap waits for mmap_lock during a slow read, in simulated time.",
  injection: {
    package: '@spf/file-backed and @spf/fault-classic',
    point:
      "`FilemapRetryPaths` via `boot({ files: { retryPaths } })` (@spf/file-backed's src/filemap-retry-paths.ts, the pieces `filemap_fault()` calls around I/O) and `UserFaultPaths` via `withUserFaultPaths(classicFaultHandler, { retryLoop, mmAccountFault })` (@spf/fault-classic's src/user-fault-paths.ts)",
  },
  files: [...files].sort((a, b) => FILE_ORDER.indexOf(a.name) - FILE_ORDER.indexOf(b.name)),
  hints: [
    'Part 2 first: every fault of the system goes through doUserAddrFaultRetry. A loop: lockMmAndFindVma (null: SIGSEGV MAPERR, the lock is already released), accessError (unlock, SIGSEGV ACCERR), handleMmFault, and without VM_FAULT_RETRY unlock and return mmFaultOutcome(ret, address).',
    'With VM_FAULT_RETRY the handler has already dropped mmap_lock: do not unlock again. Set FAULT_FLAG_TRIED and go round the loop from lockMmAndFindVma: the VMA you had may have been unmapped while the lock was dropped (its memory freed), so never reuse it.',
    'mmAccountFault is called after every attempt. An attempt that returned VM_FAULT_RETRY is not counted (its retry will be). A successful attempt is major if it had VM_FAULT_MAJOR or FAULT_FLAG_TRIED: the retry of a fault that read the disk finds the page cached and does not say VM_FAULT_MAJOR itself.',
    'Part 1: maybeUnlockMmapForIo drops the lock only when faultFlagAllowRetryFirst(vmf.flags) and not FAULT_FLAG_RETRY_NOWAIT. Before releaseFaultLock(vmf), take a reference on the file: (vmf.vma.vmFile as File).get(). Once the lock is gone munmap can drop the VMA and its reference; yours keeps the file alive until outRetry puts it.',
    'lockFolioMaybeDropMmap: trylockPage first (no sleeping, keep the lock); RETRY_NOWAIT: return false; else fpin.file = yield* maybeUnlockMmapForIo(vmf, fpin.file), then lockPage. outRetry: putPage(folio) if any, yield* fpin.put() if any, return ret | VM_FAULT_RETRY.',
  ],
  tests: lab6Tests,
  buggyVariants: [
    {
      id: 'keeps-lock-over-io',
      description:
        'maybe_unlock_mmap_for_io never drops mmap_lock: correct results, but every mmap and munmap of the process waits for the disk.',
      file: 'filemap-retry.ts',
      patches: [['  if (fpin !== null) return fpin; // already', '  return fpin; // already']],
      mustFail: 'lock-dropped-during-io',
    },
    {
      id: 'lock-folio-keeps-lock',
      description:
        'lock_folio_maybe_drop_mmap sleeps on the page lock holding mmap_lock (no maybe_unlock_mmap_for_io before lockPage).',
      file: 'filemap-retry.ts',
      patches: [['  fpin.file = yield* maybeUnlockMmapForIo(vmf, fpin.file);\n', '']],
      mustFail: 'lock-dropped-during-io',
    },
    {
      id: 'no-file-pin',
      description:
        'maybe_unlock_mmap_for_io drops mmap_lock without get_file(): munmap frees the file under the waiting fault, whose fput then uses it.',
      file: 'filemap-retry.ts',
      patches: [['    file.get(); // get_file()', '    // file.get(); get_file()']],
      mustFail: 'munmap-during-io',
    },
    {
      id: 'pin-leaked',
      description: 'out_retry forgets fput(fpin): the file is never released (umount stays EBUSY).',
      file: 'filemap-retry.ts',
      patches: [['  if (fpin !== null) yield* fpin.put();\n', '']],
      mustFail: 'munmap-during-io',
    },
    {
      id: 'retry-without-tried',
      description:
        'The retry loop does not set FAULT_FLAG_TRIED: every retry may drop the lock again, and a page the disk cannot read is retried forever.',
      file: 'fault-retry.ts',
      patches: [['      flags |= FAULT_FLAG_TRIED; //', '      void FAULT_FLAG_TRIED; //']],
      mustFail: 'bad-block-sigbus',
    },
    {
      id: 'stale-vma-after-retry',
      description:
        'After VM_FAULT_RETRY the loop takes mmap_lock again but reuses the VMA it found before: munmap may have freed it meanwhile.',
      file: 'fault-retry.ts',
      patches: [
        [
          `  for (;;) {
    // retry: the VMA is looked up again each time: munmap or mmap may have replaced it meanwhile.
    const vma = yield* lockMmAndFindVma(env, mm, address);`,
          `  const first = yield* lockMmAndFindVma(env, mm, address);
  let again = false;
  for (;;) {
    if (again) yield* mm.mmapReadLock();
    again = true;
    const vma = first;`,
        ],
      ],
      mustFail: 'munmap-during-io',
    },
    {
      id: 'major-counted-twice',
      description:
        'mm_account_fault counts the attempt that returned VM_FAULT_RETRY too: a read after eviction is two major faults.',
      file: 'fault-retry.ts',
      patches: [['  if ((ret & VM_FAULT_RETRY) !== 0) return; // counted', '  // counted']],
      mustFail: 'major-after-evict',
    },
  ],
  // @spf/fault-classic and @spf/file-backed hold the answer (the package's retry loop, accounting and
  // filemap pieces): their constants and the helpers named above. @spf/vma and @spf/pagetable hold no fault
  // handler; @spf/locks only its constants; the machine is all allowed.
  modules: () => ({
    '@spf/machine': probedNamespace(machine),
    '@spf/locks': constantsOf(locks),
    '@spf/pagetable': pagetable,
    '@spf/vma': vma,
    '@spf/fault-classic': lab6FaultClassic(),
    '@spf/file-backed': constantsOf(fileBacked),
  }),
};
