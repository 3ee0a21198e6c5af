import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  _PAGE_USER,
  ACCESS_READ,
  ACCESS_USER,
  Mmu,
  PageTables,
  PhysicalMemory,
} from '@spf/pagetable';
import type { LabTest, TestContext } from '../lab.js';
import {
  PageTableBuilder,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  PTE_XD,
  SIZE_1G,
  SIZE_2M,
  vaOf,
} from './page-table-builder.js';
import {
  expectThat,
  expectWalk,
  gp,
  hex,
  kernFetch,
  kernRead,
  kernWrite,
  ok,
  pf,
  userFetch,
  userRead,
  userWrite,
} from './walk-checks.js';
import type { Walker } from './walk-types.js';

const P = 1;
const W = 2;
const U = 4;
const RSVD = 8;
const I = 16;

const studentWalk = (ctx: TestContext) => ctx.fn<Walker>('walk.ts', 'walk');
const GiB = 1n << 30n;
const USER_RW = PTE_P | PTE_RW | PTE_US;

/** Lab 1's graded tests (100 points), parents before children. */
export const lab1Tests: readonly LabTest[] = [
  {
    id: 'translate-4k',
    title: 'Translate a 4 KiB page',
    points: 10,
    category: 'functionality',
    description:
      'User reads of mapped 4 KiB pages return the right physical address; every level uses its own 9 index bits.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const cases: Array<[bigint, bigint]> = [
        [vaOf(3, 5, 7, 9), GiB + 0x5000n],
        [vaOf(3, 5, 7, 10), GiB + 0x9000n],
        [vaOf(3, 6, 7, 9), GiB + 0x2000n],
        [vaOf(1, 5, 8, 9), GiB + 0x7000n],
        [vaOf(0, 0, 0, 1), GiB + 0x1000n],
      ];
      for (const [va, pa] of cases) b.map(va, pa);
      for (const [va, pa] of cases) {
        for (const off of [0n, 0x123n, 0xff8n]) {
          expectWalk(
            walk,
            b,
            va + off,
            userRead,
            ok(pa + off, 4096),
            'a mapped page translates to its frame plus the offset',
          );
        }
      }
    },
  },
  {
    id: 'translate-huge',
    title: 'Translate 2 MiB and 1 GiB pages',
    points: 10,
    category: 'functionality',
    parent: 'translate-4k',
    description: 'A PDE or PDPTE with PS set ends the walk: the offset is 21 or 30 bits wide.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va2m = vaOf(2, 3, 4, 0);
      const va1g = vaOf(4, 9, 0, 0);
      b.map(va2m, 4n * GiB + SIZE_2M * 3n, { size: SIZE_2M });
      b.map(va1g, 8n * GiB, { size: SIZE_1G });
      expectWalk(
        walk,
        b,
        va2m + 0x1abcdn,
        userRead,
        ok(4n * GiB + SIZE_2M * 3n + 0x1abcdn, 2097152),
        'a 2 MiB page keeps 21 offset bits',
      );
      expectWalk(
        walk,
        b,
        va1g + 0x2345678n,
        userWrite,
        ok(8n * GiB + 0x2345678n, 1073741824),
        'a 1 GiB page keeps 30 offset bits',
      );
    },
  },
  {
    id: 'not-present',
    title: 'Not-present faults',
    points: 10,
    category: 'functionality',
    parent: 'translate-4k',
    description:
      'A clear P bit at any level is a #PF with P=0 in the error code, W/U/I describing the access (I for fetches when NXE or SMEP is on), and CR2 = the address.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(3, 5, 7, 9, 0x10n);
      b.map(va - 0x10n, GiB);
      expectWalk(walk, b, vaOf(4, 0, 0, 0), userRead, pf(U, vaOf(4, 0, 0, 0)), 'no PML4 entry: not present');
      for (let level = 3; level >= 0; level--) {
        b.edit(va, level, (e) => e & ~PTE_P);
        expectWalk(
          walk,
          b,
          va,
          userWrite,
          pf(W | U, va),
          `the entry at level ${level} (0 = PML4E) is not present`,
        );
        expectWalk(walk, b, va, kernRead, pf(0, va), `the entry at level ${level} is not present`);
        expectWalk(
          walk,
          b,
          va,
          userFetch,
          pf(U | I, va),
          `the entry at level ${level} is not present (I is set for fetches when NXE=1)`,
        );
        b.edit(va, level, (e) => e | PTE_P);
      }
      const absent = vaOf(4, 0, 0, 0);
      expectWalk(
        walk,
        b,
        absent,
        kernFetch,
        pf(I, absent),
        'I is set for fetches when SMEP=1, even with NXE=0',
        {
          nxe: false,
          smep: true,
        },
      );
      expectWalk(walk, b, absent, userFetch, pf(U, absent), 'I is clear for fetches when NXE=0 and SMEP=0', {
        nxe: false,
        smep: false,
      });
    },
  },
  {
    id: 'canonical',
    title: 'Canonical addresses',
    points: 5,
    category: 'functionality',
    parent: 'translate-4k',
    description:
      'Bits 63:47 must all equal bit 47, or the access raises #GP (not #PF); upper-half addresses walk normally.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const kva = vaOf(256, 1, 2, 3);
      b.map(kva, GiB + 0x3000n, { leaf: PTE_P | PTE_RW, upper: PTE_P | PTE_RW });
      expectWalk(
        walk,
        b,
        kva + 8n,
        kernRead,
        ok(GiB + 0x3008n, 4096),
        'an upper-half canonical address uses PML4 index 256',
      );
      expectWalk(walk, b, 1n << 47n, userRead, gp, 'bit 47 set but bits 63:48 clear is not canonical');
      expectWalk(walk, b, 0x0001_0000_0000_0000n, kernRead, gp, 'bit 48 set alone is not canonical');
      expectWalk(
        walk,
        b,
        0xfffe_8000_0000_0000n,
        kernWrite,
        gp,
        'bit 48 clear under a set bit 47 is not canonical',
      );
    },
  },
  {
    id: 'write-protect',
    title: 'Write protection and CR0.WP',
    points: 10,
    category: 'functionality',
    parent: 'not-present',
    description:
      'Writes need R/W=1 at every level: always for user mode, and for the kernel only when CR0.WP=1.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const ro = vaOf(1, 1, 1, 1);
      b.map(ro, GiB, { leaf: PTE_P | PTE_US });
      const roUpper = vaOf(1, 2, 1, 1);
      b.map(roUpper, GiB + 0x1000n, { upper: PTE_P | PTE_US });
      b.edit(roUpper, 0, (e) => e | PTE_RW);
      b.edit(roUpper, 2, (e) => e | PTE_RW);
      expectWalk(walk, b, ro, userRead, ok(GiB, 4096), 'reading a read-only page is fine');
      expectWalk(
        walk,
        b,
        ro,
        userWrite,
        pf(P | W | U, ro),
        'a user write to a read-only PTE is a protection fault',
      );
      expectWalk(
        walk,
        b,
        roUpper,
        userWrite,
        pf(P | W | U, roUpper),
        'R/W=0 in the PDPTE makes the whole range read-only',
      );
      expectWalk(
        walk,
        b,
        ro,
        kernWrite,
        pf(P | W, ro),
        'with CR0.WP=1 the kernel cannot write a read-only page',
      );
      expectWalk(
        walk,
        b,
        ro,
        kernWrite,
        ok(GiB, 4096),
        'with CR0.WP=0 the kernel may write a read-only page',
        { wp: false },
      );
      expectWalk(
        walk,
        b,
        ro,
        userWrite,
        pf(P | W | U, ro),
        'CR0.WP only concerns the kernel: with WP=0 a user write to a read-only page still faults',
        { wp: false },
      );
    },
  },
  {
    id: 'user-supervisor',
    title: 'User/supervisor pages',
    points: 5,
    category: 'functionality',
    parent: 'not-present',
    description:
      'User-mode accesses need U/S=1; a supervisor page faults with P=1 and U=1 in the error code.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const kpage = vaOf(2, 0, 0, 5);
      b.map(kpage, GiB + 0x5000n, { leaf: PTE_P | PTE_RW });
      expectWalk(
        walk,
        b,
        kpage,
        userRead,
        pf(P | U, kpage),
        'a user read of a supervisor PTE is a protection fault',
      );
      expectWalk(
        walk,
        b,
        kpage,
        userWrite,
        pf(P | W | U, kpage),
        'a user write of a supervisor PTE is a protection fault',
      );
      expectWalk(walk, b, kpage, kernWrite, ok(GiB + 0x5000n, 4096), 'the kernel may use its own page');
    },
  },
  {
    id: 'user-supervisor-upper',
    title: 'U/S at the upper levels',
    points: 5,
    category: 'functionality',
    parent: 'user-supervisor',
    description: 'A page is a user page only if U/S=1 at every level, not just in the PTE.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      for (const level of [0, 1, 2]) {
        const va = vaOf(3 + level, level, 1, 2);
        b.map(va, GiB + BigInt(level) * 0x1000n);
        b.edit(va, level, (e) => e & ~PTE_US);
        expectWalk(
          walk,
          b,
          va,
          userRead,
          pf(P | U, va),
          `U/S=0 in the entry at level ${level} (0 = PML4E) makes the page supervisor-only`,
        );
      }
    },
  },
  {
    id: 'accessed-bits',
    title: 'Accessed bits',
    points: 5,
    category: 'functionality',
    parent: 'translate-4k',
    description: 'A successful translation sets A in every entry it used (PML4E, PDPTE, PDE and PTE).',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(5, 6, 7, 8);
      b.map(va, GiB);
      expectWalk(walk, b, va, userRead, ok(GiB, 4096), 'a mapped page translates');
      for (let level = 0; level < 4; level++) {
        const e = b.entry(va, level);
        expectThat(
          (e & PTE_A) !== 0n,
          `after a read, the entry at level ${level} (0 = PML4E) must have A set`,
          'A=1',
          `entry ${hex(e)} (A=0)`,
        );
      }
      const big = vaOf(6, 1, 0, 0);
      b.map(big, 2n * GiB, { size: SIZE_2M });
      expectWalk(walk, b, big, userRead, ok(2n * GiB, 2097152), 'a 2 MiB page translates');
      const pde = b.entry(big, 2);
      expectThat((pde & PTE_A) !== 0n, 'a 2 MiB leaf PDE must get A set', 'A=1', `PDE ${hex(pde)}`);
    },
  },
  {
    id: 'dirty-on-write',
    title: 'Dirty bit on writes',
    points: 5,
    category: 'functionality',
    parent: 'accessed-bits',
    description: 'A successful write sets D in the leaf entry only; D in upper-level entries is left alone.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(5, 6, 7, 8);
      b.map(va, GiB);
      expectWalk(walk, b, va, userWrite, ok(GiB, 4096), 'a writable page translates');
      const pte = b.entry(va, 3);
      expectThat(
        (pte & (PTE_A | PTE_D)) === (PTE_A | PTE_D),
        'after a write the PTE must have A and D set',
        'A=1 D=1',
        `PTE ${hex(pte)}`,
      );
      for (let level = 0; level < 3; level++) {
        const e = b.entry(va, level);
        expectThat(
          (e & PTE_D) === 0n,
          `D must not be set in the non-leaf entry at level ${level}`,
          'D=0',
          `entry ${hex(e)}`,
        );
      }
      const big = vaOf(6, 2, 3, 0);
      b.map(big, 4n * GiB, { size: SIZE_2M });
      expectWalk(
        walk,
        b,
        big + 0x40n,
        kernWrite,
        ok(4n * GiB + 0x40n, 2097152),
        'a writable 2 MiB page translates',
      );
      const pde = b.entry(big, 2);
      expectThat(
        (pde & PTE_D) !== 0n,
        'a write through a 2 MiB leaf PDE sets D in it',
        'D=1',
        `PDE ${hex(pde)}`,
      );
    },
  },
  {
    id: 'no-dirty-on-read',
    title: 'No dirty bit on reads or faults',
    points: 5,
    category: 'functionality',
    parent: 'accessed-bits',
    description: 'Reads and fetches never set D, and a faulting write leaves the PTE clean.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(5, 6, 7, 8);
      b.map(va, GiB);
      expectWalk(walk, b, va, userRead, ok(GiB, 4096), 'a mapped page translates');
      expectWalk(walk, b, va, userFetch, ok(GiB, 4096), 'a mapped executable page can be fetched');
      const pte = b.entry(va, 3);
      expectThat(
        (pte & PTE_D) === 0n,
        'a read or fetch must not set D in the PTE',
        'D=0',
        `PTE ${hex(pte)} (D=1)`,
      );
      const ro = vaOf(5, 6, 7, 9);
      b.map(ro, GiB + 0x1000n, { leaf: PTE_P | PTE_US });
      expectWalk(walk, b, ro, userWrite, pf(P | W | U, ro), 'a write to a read-only page faults');
      const roPte = b.entry(ro, 3);
      expectThat(
        (roPte & PTE_D) === 0n,
        'a write that faults must not set D',
        'D=0',
        `PTE ${hex(roPte)} (D=1)`,
      );
    },
  },
  {
    id: 'execute-disable',
    title: 'Execute-disable (XD)',
    points: 10,
    category: 'functionality',
    parent: 'not-present',
    description:
      'With EFER.NXE=1, XD=1 at any level forbids instruction fetches (error code P|I); data accesses still work.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(7, 1, 2, 3);
      b.map(va, GiB, { leaf: USER_RW | PTE_XD });
      expectWalk(walk, b, va, userRead, ok(GiB, 4096), 'XD does not stop reads');
      expectWalk(walk, b, va, userFetch, pf(P | U | I, va), 'a user fetch from an XD page faults');
      expectWalk(walk, b, va, kernFetch, pf(P | I, va), 'a kernel fetch from an XD page faults');
      const up = vaOf(7, 2, 2, 3);
      b.map(up, GiB + 0x1000n);
      b.edit(up, 1, (e) => e | PTE_XD);
      expectWalk(
        walk,
        b,
        up,
        userFetch,
        pf(P | U | I, up),
        'XD in the PDPTE forbids fetches from everything below it',
      );
      expectWalk(walk, b, up, userWrite, ok(GiB + 0x1000n, 4096), 'XD in the PDPTE does not stop writes');
    },
  },
  {
    id: 'reserved-bits',
    title: 'Reserved bits',
    points: 5,
    category: 'robustness',
    parent: 'not-present',
    description:
      'A present entry with a reserved bit set (above MAXPHYADDR, XD when NXE=0, PS in a PML4E, the low address bits of a 2 MiB or 1 GiB page) is a #PF with P and RSVD.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(9, 1, 1, 1);
      b.map(va, GiB);
      b.edit(va, 3, (e) => e | (1n << 50n));
      expectWalk(walk, b, va, userRead, pf(P | U | RSVD, va), 'PTE bit 50 is above MAXPHYADDR (46)');
      expectWalk(
        walk,
        b,
        va,
        userRead,
        ok((1n << 50n) | GiB, 4096),
        'with MAXPHYADDR 52 bit 50 is an address bit',
        { maxPhyAddr: 52 },
      );
      const xd = vaOf(9, 2, 1, 1);
      b.map(xd, GiB + 0x1000n, { leaf: USER_RW | PTE_XD });
      expectWalk(walk, b, xd, userRead, pf(P | U | RSVD, xd), 'with NXE=0 bit 63 is reserved', {
        nxe: false,
      });
      const ps = vaOf(10, 1, 1, 1);
      b.map(ps, GiB + 0x2000n);
      b.edit(ps, 0, (e) => e | PTE_PS);
      expectWalk(
        walk,
        b,
        ps,
        kernWrite,
        pf(P | W | RSVD, ps),
        'PS is reserved in a PML4E (there are no 512 GiB pages)',
      );
      const big = vaOf(11, 1, 3, 0);
      b.map(big, 4n * GiB, { size: SIZE_2M });
      b.edit(big, 2, (e) => e | (1n << 13n));
      expectWalk(walk, b, big, userRead, pf(P | U | RSVD, big), 'bits 20:13 of a 2 MiB PDE are reserved');
      const huge = vaOf(11, 2, 0, 0);
      b.map(huge, 8n * GiB, { size: SIZE_1G });
      b.edit(huge, 1, (e) => e | (1n << 13n));
      expectWalk(walk, b, huge, userRead, pf(P | U | RSVD, huge), 'bits 29:13 of a 1 GiB PDPTE are reserved');
      const pat = vaOf(11, 3, 1, 1);
      b.map(pat, GiB + 0x3000n + (0x7fn << 13n), { leaf: USER_RW | PTE_PS });
      expectWalk(
        walk,
        b,
        pat,
        userRead,
        ok(GiB + 0x3000n + (0x7fn << 13n), 4096),
        'bit 7 of a PTE is PAT, not PS: a 4 KiB frame may use address bits 20:13',
      );
    },
  },
  {
    id: 'reserved-nonpresent',
    title: 'Reserved bits of non-present entries are ignored',
    points: 5,
    category: 'robustness',
    parent: 'reserved-bits',
    description:
      'When P=0 the other bits belong to the OS (Linux keeps swap entries there): the fault is a plain not-present one.',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(11, 1, 1, 1);
      b.map(va, GiB);
      b.edit(va, 3, () => (0x3fn << 50n) | (0x1234n << 12n) | PTE_XD);
      expectWalk(walk, b, va, userRead, pf(U, va), 'a non-present PTE holding a swap-entry-like value');
      b.edit(va, 3, () => 0n);
      b.edit(va, 2, (e) => (e & ~PTE_P) | (1n << 51n));
      expectWalk(walk, b, va, kernWrite, pf(W, va), 'a non-present PDE with bit 51 set', { nxe: false });
    },
  },
  {
    id: 'smep-smap',
    title: 'SMEP and SMAP',
    points: 5,
    category: 'robustness',
    parent: 'user-supervisor',
    description:
      'CR4.SMEP stops kernel fetches from user pages; CR4.SMAP stops kernel data accesses to them unless EFLAGS.AC=1 (and never for implicit accesses).',
    run(ctx) {
      const walk = studentWalk(ctx);
      const b = new PageTableBuilder();
      const va = vaOf(12, 1, 1, 1);
      b.map(va, GiB);
      expectWalk(walk, b, va, kernFetch, ok(GiB, 4096), 'without SMEP the kernel may fetch from a user page');
      expectWalk(walk, b, va, kernFetch, pf(P | I, va), 'SMEP forbids kernel fetches from user pages', {
        smep: true,
      });
      expectWalk(walk, b, va, kernRead, pf(P, va), 'SMAP forbids kernel reads of user pages', { smap: true });
      expectWalk(walk, b, va, kernWrite, ok(GiB, 4096), 'EFLAGS.AC=1 lets the kernel through SMAP', {
        smap: true,
        ac: true,
      });
      const implicit = { kind: 'read', user: false, implicit: true } as const;
      expectWalk(walk, b, va, implicit, pf(P, va), 'implicit accesses ignore EFLAGS.AC', {
        smap: true,
        ac: true,
      });
    },
  },
  {
    id: 'through-the-mmu',
    title: 'Drive the simulated MMU',
    points: 5,
    category: 'functionality',
    parent: 'dirty-on-write',
    description:
      "Your walker replaces @spf/pagetable's walk (`new Mmu(mem, { walker })`) over real page tables built by the kernel's page-table API.",
    run(ctx) {
      const walk = studentWalk(ctx);
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024 });
      const pt = new PageTables(mem);
      const frame = mem.allocPages(0);
      const va = 0x7f12_3456_7000;
      const leafPa = pt.map(va, frame.pa, { flags: _PAGE_PRESENT | _PAGE_RW | _PAGE_USER });
      const mmu = new Mmu(mem, { walker: walk });
      mmu.switchMm(0, pt);
      const got = mmu.translate(0, va + 0x18, { kind: 'write', user: true });
      expectThat(
        got.ok && got.pa === BigInt(frame.pa + 0x18),
        `the MMU with your walker translates a user write of ${hex(BigInt(va + 0x18))}`,
        `ok: pa=${hex(BigInt(frame.pa + 0x18))}`,
        got.ok ? `ok: pa=${hex(got.pa)}` : JSON.stringify({ ...got, cr2: undefined }),
      );
      const leaf = pt.readEntry(leafPa);
      expectThat(
        (leaf & (_PAGE_ACCESSED | _PAGE_DIRTY)) === (_PAGE_ACCESSED | _PAGE_DIRTY),
        'the write set A and D in the real PTE (through WalkMemory.setBits)',
        'A=1 D=1',
        `PTE ${hex(leaf)}`,
      );
      const missing = va + 0x1000;
      const pa = mmu.access(0, missing, ACCESS_USER | ACCESS_READ);
      expectThat(
        pa === -1 && mmu.fault.kind === 'PF' && mmu.fault.errorCode === U,
        `a user read of the unmapped ${hex(BigInt(missing))} is a not-present #PF through Mmu.access`,
        '#PF errorCode=0x4',
        pa === -1 ? `${String(mmu.fault.kind)} errorCode=0x${mmu.fault.errorCode.toString(16)}` : `pa=${pa}`,
      );
    },
  },
];
