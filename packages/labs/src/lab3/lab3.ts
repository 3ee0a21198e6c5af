import * as faultClassic from '@spf/fault-classic';
import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import * as pagetable from '@spf/pagetable';
import * as vma from '@spf/vma';
import { constantsOf, pick } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab3Tests } from './tests.js';

const FILE_ORDER = ['do-anonymous-page.ts', 'do-wp-page.ts'];

/**
 * What Lab 3's code may use of @spf/fault-classic besides its constants: the helpers do_anonymous_page and
 * do_wp_page call in Linux. Never the package's own `doAnonymousPage`, `doWpPage`, `wpPageReuse`,
 * `wpPageCopy`, nor anything that reaches them (`handlePteFault`, `handleMmFault`, the handlers): those are
 * the answer.
 */
export const LAB3_FAULT_CLASSIC_HELPERS = [
  'allocUserPage',
  'allocZeroedUserPage',
  'copyUserPage',
  'faultIsSpeculative',
  'maybeMkwrite',
  'pteMapLock',
  'vmfLockFailed',
  'vmfPteChanged',
  'wpPageShared',
] as const;

/**
 * Lab 3: the classic fault. The student writes `do_anonymous_page()` and `do_wp_page()` behind
 * @spf/fault-classic's `PteFaultPaths` injection point; user programs on @spf/kernel grade them, and the
 * explorer runs two of them on several CPUs.
 */
export const lab3: Lab = {
  id: 'lab3',
  title: 'Lab 3: the classic fault',
  version: 1,
  summary:
    'Write do_anonymous_page() (the zero page for reads, a zeroed page for writes, the re-check under the PTE lock, RSS) and do_wp_page() (reuse an exclusive page, copy a shared one, flush the TLBs) of the classic Linux fault path. Graded with user programs on the simulated kernel: first touch, write after read, copy-on-write after fork as both processes see it, and explored races between threads.',
  injection: {
    package: '@spf/fault-classic',
    point:
      '`PteFaultPaths` via `withPteFaultPaths(classicFaultHandler, { doAnonymousPage, doWpPage })` (src/pte-fault-paths.ts), the two functions `handle_pte_fault()` dispatches to',
  },
  files: [...files].sort((a, b) => FILE_ORDER.indexOf(a.name) - FILE_ORDER.indexOf(b.name)),
  hints: [
    'Start with the write of do_anonymous_page: allocate with allocZeroedUserPage(env), build the entry with mkPte(page, vmf.vmaPageProt) and pteMkyoung/pteMkdirty/pteMkwrite, lock with pteMapLock(vmf), then vmf.mm.pgd.setPteAt(vmf.address, locked.ptep, entry) and locked.ptl.unlock(). anonVmaPrepare(vma) first: the reverse map needs it.',
    'Reads map the zero page: pfnPte(env.mem.zeroPfn, vmf.vmaPageProt), with pteMkspecial when env.pteSpecial. Never make it writable: a write to a zero-page PTE must fault into do_wp_page, which gives the process a page of its own.',
    'Between your check that the PTE was none and your setPteAt, another thread may have mapped the page: after taking the PTE lock, ask vmfPteChanged(vmf, locked.ptep); if it changed, unlock, putPage your page and return 0 (the access is retried and finds the other page).',
    'do_wp_page: vmNormalPage() gives null for the zero page. Reuse only when pageAnonExclusive(page): after fork the page is shared until one side writes. Otherwise getPage(old), unlock, copy (allocUserPage + copyUserPage, or allocZeroedUserPage for the zero page), relock and compare the PTE with vmf.origPte.',
    "Replacing a PTE that other CPUs may have cached: ptepGetAndClear, then mm.pageTables.flushTlbPage(address), then setPteAt. RSS: MM_ANONPAGES grows by one for each page you map (the zero page's copy too), and folioAddNewAnonRmap/folioRemoveRmap keep mapcounts; drop both references on the old page (the mapping's and yours).",
  ],
  tests: lab3Tests,
  buggyVariants: [
    {
      id: 'no-recheck-under-lock',
      description:
        'do_anonymous_page installs its page without re-checking the PTE under the lock: two threads racing on one page both map one, and the first is lost with its write.',
      file: 'do-anonymous-page.ts',
      patches: [
        [
          `  if (yield* vmfPteChanged(vmf, locked.ptep)) {
    yield* locked.ptl.unlock();
    yield* putPage(page);
    return 0;
  }
`,
          '',
        ],
      ],
      mustFail: 'same-page-race',
    },
    {
      id: 'reuse-without-exclusivity',
      description:
        'do_wp_page reuses every anonymous page instead of only exclusive ones: after fork, the child writes into the page the parent still maps.',
      file: 'do-wp-page.ts',
      patches: [
        [
          'if (page !== null && pageAnonExclusive(page)) {',
          'if (page !== null) {\n    void pageAnonExclusive;',
        ],
      ],
      mustFail: 'cow-after-fork',
    },
    {
      id: 'no-flush-after-copy',
      description:
        'wp_page_copy replaces the PTE without flushing the TLBs: another CPU keeps reading the old page.',
      file: 'do-wp-page.ts',
      patches: [['      yield* mm.pageTables.flushTlbPage(vmf.address);\n', '']],
      mustFail: 'cow-tlb-flush',
    },
    {
      id: 'rss-miscounted',
      description: 'do_anonymous_page maps a new page without counting it in MM_ANONPAGES.',
      file: 'do-anonymous-page.ts',
      patches: [
        ['  yield* addMmCounter(mm, MM_ANONPAGES, 1);\n', '  void addMmCounter;\n  void MM_ANONPAGES;\n'],
      ],
      mustFail: 'rss-counts',
    },
    {
      id: 'rss-zero-page-copy-uncounted',
      description:
        'wp_page_copy does not count the copy of the zero page in MM_ANONPAGES (it had no page to replace).',
      file: 'do-wp-page.ts',
      patches: [
        [
          `      if (old === null) {
        yield* addMmCounter(mm, MM_ANONPAGES, 1);
      } else if`,
          '      if (old === null) {\n      } else if',
        ],
      ],
      mustFail: 'rss-counts',
    },
    {
      id: 'zero-page-writable',
      description:
        'do_anonymous_page maps the zero page writable on a read: the next write goes into the page every process reads zeros from.',
      file: 'do-anonymous-page.ts',
      patches: [
        [
          '    if (env.pteSpecial) entry = pteMkspecial(entry);\n',
          '    if (env.pteSpecial) entry = pteMkspecial(entry);\n    if ((vmf.vmaFlags & VM_WRITE) !== 0) entry = pteMkwrite(entry);\n',
        ],
      ],
      mustFail: 'write-after-read',
    },
  ],
  // @spf/fault-classic is the lab's target and holds the answer: its constants and the helpers the kernel
  // functions call, nothing that reaches its own do_anonymous_page or do_wp_page. @spf/vma and
  // @spf/pagetable hold no fault handler (the page-table and mm primitives the lab is written with);
  // @spf/locks only its constants (the PTE lock is handed over, never built). The machine is all allowed.
  modules: () => ({
    '@spf/machine': probedNamespace(machine),
    '@spf/locks': constantsOf(locks),
    '@spf/pagetable': pagetable,
    '@spf/vma': vma,
    '@spf/fault-classic': pick(faultClassic, LAB3_FAULT_CLASSIC_HELPERS),
  }),
};
