import * as faultClassic from '@spf/fault-classic';
import * as faultSpec from '@spf/fault-spec';
import * as locks from '@spf/locks';
import * as machine from '@spf/machine';
import * as pagetable from '@spf/pagetable';
import * as vma from '@spf/vma';
import { constantsOf, pick } from '../allowed-imports.js';
import { probedNamespace } from '../debug-probe.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab4Tests } from './tests.js';

/**
 * What Lab 4's code may use of @spf/fault-spec besides its constants: the lookup (`find_vma_rcu()`), the
 * entry reads of the walk without its interrupt handling, and `vma_has_changed()`. Never the package's
 * `handleSpeculativeFault`, `speculativeWalk` (it turns interrupts off itself), `dufourPteMapLock`, the
 * other designs' lock functions, or the handlers (`dufourSpf` without paths runs the package's attempt).
 */
export const LAB4_FAULT_SPEC_HELPERS = ['findVmaRcu', 'readPageTableEntries', 'vmaHasChanged'] as const;

/**
 * What Lab 4's code may use of @spf/fault-classic: everything after the speculative attempt validated the
 * fault (`handlePteFault`, which runs the package's do_anonymous_page and do_wp_page with the
 * student's pte_map_lock), `accessError` and the vm_fault helpers. Not the handlers and the x86 entry.
 */
export const LAB4_FAULT_CLASSIC_HELPERS = [
  'accessError',
  'faultIsSpeculative',
  'handlePteFault',
  'pteMapLock',
  'vmfLockFailed',
] as const;

/**
 * Lab 4: the speculative fault. The student writes Dufour's `handle_speculative_fault()` (with its
 * `pte_map_lock()`) behind @spf/fault-spec's `dufourSpf({ paths })`; the explorer races it against munmap,
 * mprotect and mremap.
 */
export const lab4: Lab = {
  id: 'lab4',
  title: 'Lab 4: the speculative fault',
  version: 2,
  summary:
    "Write the speculative attempt of Laurent Dufour's SPF: a vm_sequence snapshot, the page walk with interrupts off, pte_map_lock() with spin_trylock() and the re-check after the PTE lock, and the fallback to mmap_lock. Graded by the explorer against munmap, mprotect and mremap on another CPU: each missing check is a race it finds, shown as a schedule and a per-CPU timeline.",
  injection: {
    package: '@spf/fault-spec',
    point:
      '`DufourSpfPaths` via `dufourSpf({ paths: { handleSpeculativeFault } })` (src/dufour/dufour-spf.ts), run before mmap_lock is taken',
  },
  files,
  buildsOn: ['lab3'],
  hints: [
    'Start with the skeleton that can only fall back: findVmaRcu, then a try/finally whose finally does putVma(vma), and VM_FAULT_RETRY everywhere. Then let the cases through one by one.',
    'Before trusting anything you read of the VMA, take the snapshot: s.seq = yield* vma.vmSequence.rawReadSeqcount() (odd: give up). Copy vma.vmFlags and vma.vmPageProt into the vm_fault then: those copies are what the fault acts on.',
    'findVmaRcu returns the first VMA that ends above the address; it may start above it too. And accessError(errorCode, vma) must be false, or the classic path has to send the signal.',
    'Walk with interrupts off: const irqs = yield* localIrqSave(); ...readPageTableEntries(s)...; yield* localIrqRestore(irqs). Anything but "ok" falls back. Then vma.vmSequence.readRetry(s.seq).',
    'pte_map_lock(s, vmf): interrupts off; vmaHasChanged(s) and the PMD still vmf.origPmd; then ptl.trylock() (never lock(): with interrupts off you could wait for a CPU that waits for your IPI); then vmaHasChanged(s) again, now that munmap/mprotect/mremap must wait for your lock. Any failure: undo and return null.',
  ],
  tests: lab4Tests,
  buggyVariants: [
    {
      id: 'no-fallback-on-missing-table',
      description:
        'A page walk that found a page table missing goes on to handle_pte_fault instead of falling back.',
      file: 'speculative-fault.ts',
      patches: [
        ["if (walked !== 'ok') return VM_FAULT_RETRY;", "if (walked === 'huge') return VM_FAULT_RETRY;"],
      ],
      mustFail: 'spec-first-touch',
    },
    {
      id: 'no-access-check',
      description:
        'The attempt never asks access_error(): a write to a read-only VMA is handled speculatively.',
      file: 'speculative-fault.ts',
      patches: [['    if (accessError(errorCode, vma)) return VM_FAULT_RETRY;\n', '    void accessError;\n']],
      mustFail: 'spec-access-error',
    },
    {
      id: 'no-range-check',
      description: 'The attempt does not check that the address is inside the VMA find_vma_rcu returned.',
      file: 'speculative-fault.ts',
      patches: [['    if (address < vma.vmStart || address >= vma.vmEnd) return VM_FAULT_RETRY;\n', '']],
      mustFail: 'spec-hole',
    },
    {
      id: 'spin-lock-with-irqs-off',
      description:
        'pte_map_lock takes the PTE lock with spin_lock() while interrupts are off, instead of spin_trylock().',
      file: 'speculative-fault.ts',
      patches: [
        [
          `  if (!(yield* ptl.trylock())) {
    yield* localIrqRestore(irqs);
    return null;
  }`,
          '  yield* ptl.lock();',
        ],
      ],
      mustFail: 'spec-vs-cow-flush',
    },
    {
      id: 'no-recheck-after-ptl',
      description:
        'pte_map_lock checks the VMA before taking the PTE lock but not once it holds it: a writer that ran in between is missed.',
      file: 'speculative-fault.ts',
      patches: [
        [
          `  if (yield* vmaHasChanged(s)) {
    yield* ptl.unlock();
    yield* localIrqRestore(irqs);
    return null;
  }
`,
          '',
        ],
      ],
      mustFail: 'spec-vs-munmap',
    },
    {
      id: 'no-vma-checks-in-pte-map-lock',
      description:
        'pte_map_lock never asks vma_has_changed(): it trusts the snapshot validated after the walk, although mprotect, munmap or mremap may have run since.',
      file: 'speculative-fault.ts',
      patches: [
        [
          `  if (yield* vmaHasChanged(s)) {
    yield* localIrqRestore(irqs);
    return null;
  }
`,
          '',
        ],
        [
          `  if (yield* vmaHasChanged(s)) {
    yield* ptl.unlock();
    yield* localIrqRestore(irqs);
    return null;
  }
`,
          '',
        ],
      ],
      mustFail: 'spec-vs-mprotect',
    },
  ],
  // @spf/fault-spec and @spf/fault-classic hold the answer (the package's own attempt and pte_map_lock):
  // only their constants and the helpers named above. @spf/vma and @spf/pagetable hold no fault handler;
  // @spf/locks only its constants (the PTE lock is reached through pteLockptr); the machine is all allowed.
  modules: () => ({
    '@spf/machine': probedNamespace(machine),
    '@spf/locks': constantsOf(locks),
    '@spf/pagetable': pagetable,
    '@spf/vma': vma,
    '@spf/fault-classic': pick(faultClassic, LAB4_FAULT_CLASSIC_HELPERS),
    '@spf/fault-spec': pick(faultSpec, LAB4_FAULT_SPEC_HELPERS),
  }),
};
