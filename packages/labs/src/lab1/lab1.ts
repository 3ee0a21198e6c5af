import * as pagetable from '@spf/pagetable';
import { constantsOf } from '../allowed-imports.js';
import type { Lab } from '../lab.js';
import { files } from './files.gen.js';
import { lab1Tests } from './tests.js';

/**
 * Lab 1: walk the page tables. The student writes the x86-64 4-level walk behind @spf/pagetable's `Walker`
 * injection point: translation, permission checks, the #PF error code, and A/D updates.
 */
export const lab1: Lab = {
  id: 'lab1',
  title: 'Lab 1: walk the page tables',
  version: 2,
  summary:
    'Implement the x86-64 4-level page walk that the MMU performs on every TLB miss: translate a virtual address, check R/W, U/S and XD at every level (with CR0.WP, SMEP and SMAP), compute the exact #PF error code, and set the accessed and dirty bits.',
  injection: {
    package: '@spf/pagetable',
    point: '`Walker` (src/walker.ts), used by the MMU through `new Mmu({ walker })`',
  },
  files,
  hints: [
    'Start with the happy path: index = (va >> shift) & 0x1ffn for shifts 39, 30, 21 and 12; the next table is the entry with its low 12 bits (and bits 52 and up) masked off.',
    'Rights combine across levels: a page is writable only if R/W=1 in every entry on the path, a user page only if U/S=1 in every entry, and XD=1 in any entry forbids fetches. Keep three booleans while you walk.',
    'The error code always describes the access (W for writes, U for user mode, I for fetches when NXE or SMEP is on); P is 1 only when the entry was present and the rights said no. Check P before anything else in an entry.',
    'A and D are set only when the translation succeeds: A on every entry you used, D on the leaf, and only for writes.',
  ],
  tests: lab1Tests,
  buggyVariants: [
    {
      id: 'ignores-us-upper',
      description:
        'Uses only the leaf entry’s U/S bit, so a supervisor-only PDE does not protect the pages below it.',
      file: 'walk.ts',
      patches: [['user &&= (e & US) !== 0n;', 'user = (e & US) !== 0n;']],
      mustFail: 'user-supervisor-upper',
    },
    {
      id: 'dirty-on-read',
      description: 'Sets the dirty bit on every successful access, reads included.',
      file: 'walk.ts',
      patches: [['if (write) mem.setBits(addr, D);', 'mem.setBits(addr, D);']],
      mustFail: 'no-dirty-on-read',
    },
    {
      id: 'ignores-xd',
      description: 'Never looks at the XD bit, so fetches from no-execute pages succeed.',
      file: 'walk.ts',
      patches: [['if (regs.nxe && (e & XD) !== 0n) executable = false;', '// XD ignored']],
      mustFail: 'execute-disable',
    },
    {
      id: 'reserved-before-present',
      description:
        'Checks reserved bits before the present bit, so a non-present entry with OS bits set reports RSVD.',
      file: 'walk.ts',
      patches: [
        [
          'if ((e & P) === 0n) return fault(0);\n    if (reservedBitsSet(e, level, regs)) return fault(PF_P | PF_RSVD);',
          'if (reservedBitsSet(e, level, regs)) return fault(PF_P | PF_RSVD);\n    if ((e & P) === 0n) return fault(0);',
        ],
      ],
      mustFail: 'reserved-nonpresent',
    },
    {
      id: 'ignores-cr0-wp',
      description: 'Applies R/W to kernel writes even when CR0.WP is 0.',
      file: 'walk.ts',
      patches: [
        ['if (write && regs.wp && !writable) allowed = false;', 'if (write && !writable) allowed = false;'],
      ],
      mustFail: 'write-protect',
    },
    {
      id: 'user-write-needs-wp',
      description:
        'Lets CR0.WP=0 switch off write protection for user mode too (it only concerns the kernel).',
      file: 'walk.ts',
      patches: [
        ['if (write && !writable) allowed = false;', 'if (write && regs.wp && !writable) allowed = false;'],
      ],
      mustFail: 'write-protect',
    },
    {
      id: 'fetch-i-bit-needs-nxe',
      description: 'Sets the I bit of the error code only when NXE is on, forgetting SMEP.',
      file: 'walk.ts',
      patches: [
        ["(access.kind === 'fetch' && (regs.nxe || regs.smep))", "(access.kind === 'fetch' && regs.nxe)"],
      ],
      mustFail: 'not-present',
    },
    {
      id: 'huge-page-offset',
      description: 'Keeps only 12 offset bits, which is wrong for 2 MiB and 1 GiB pages.',
      file: 'walk.ts',
      patches: [['pa: base | (va & (pageSize - 1n))', 'pa: base | (va & 0xfffn)']],
      mustFail: 'translate-huge',
    },
    {
      id: 'huge-reserved-ignored',
      description: 'Does not check the reserved low address bits (20:13) of a 2 MiB page.',
      file: 'walk.ts',
      patches: [['if (level === 2 && (e & PS) !== 0n && (e & 0x1fe000n) !== 0n) return true;', '']],
      mustFail: 'reserved-bits',
    },
    {
      id: 'pat-taken-for-ps',
      description: 'Treats bit 7 of a PTE (PAT) as PS and checks 2 MiB reserved bits there too.',
      file: 'walk.ts',
      patches: [['if (level === 2 && (e & PS) !== 0n', 'if (level >= 2 && (e & PS) !== 0n']],
      mustFail: 'reserved-bits',
    },
  ],
  // Constants only: @spf/pagetable also holds correct walks (referenceWalk, the MMU, explainWalk), which stay
  // library code but must not be importable as an answer.
  modules: () => ({ '@spf/pagetable': constantsOf(pagetable) }),
};
