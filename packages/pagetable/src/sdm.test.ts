import { describe, expect, it } from 'vitest';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_GLOBAL,
  _PAGE_NX,
  _PAGE_PAT_LARGE,
  _PAGE_PRESENT,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_USER,
} from './entry-bits.js';
import { runSync } from '@spf/machine';
import { CPU_FEATURE_NAMES, type CpuFeatures, MODERN_CPU_FEATURES } from './cpu-features.js';
import { InvalidArgumentError, UnsupportedCpuFeatureError } from './errors.js';
import { explainWalk } from './explain-walk.js';
import { kernelWalk } from './kernel-walk.js';
import { Mmu } from './mmu.js';
import { PageTables } from './page-tables.js';
import { pteMkpkey } from './pte.js';
import { referenceWalk } from './reference-walk.js';
import {
  IMPLICIT_R,
  makeWorld,
  R,
  runWalk,
  UR,
  UW,
  UX,
  W,
  WALKS,
  type World,
  type WorldOptions,
  X,
} from './test-support/world.js';
import type { WalkAccess, WalkResult } from './walker.js';
import { PF_INSTR, PF_P, PF_PK, PF_RSVD, PF_USER, PF_WRITE } from './walker.js';

const P = _PAGE_PRESENT;
const RW = _PAGE_RW;
const US = _PAGE_USER;
const DATA = 0x40_0000; // physical address used as page data
const VA = 0x7f12_3456_7000;

type Expect = { pa: bigint } | { pf: number } | { gp: true };

/**
 * Builds a fresh world for each of the three walks (fast MMU, referenceWalk, kernel form), applies `setup`,
 * runs the access, and checks each gives the expected result.
 */
function check(
  setup: (w: World) => void,
  va: bigint | number,
  access: WalkAccess,
  expected: Expect,
  opts: WorldOptions = {},
): WalkResult[] {
  const out: WalkResult[] = [];
  for (const kind of WALKS) {
    const w = makeWorld(opts);
    setup(w);
    const r = runWalk(kind, w, va, access);
    out.push(r);
    if ('pa' in expected) expect(r, kind).toMatchObject({ ok: true, pa: expected.pa });
    else if ('pf' in expected) {
      expect(r, kind).toMatchObject({ ok: false, fault: 'PF', errorCode: expected.pf, cr2: BigInt(va) });
    } else expect(r, kind).toEqual({ ok: false, fault: 'GP' });
  }
  return out;
}

const map4k = (flags: bigint, tableFlags?: bigint) => (w: World) => {
  w.pt.map(VA, DATA, { flags, tableFlags });
};

describe('4.5 4-level and 5-level paging: translation', () => {
  it('4.5.4 translates a 4 KiB page, keeping the page offset', () => {
    check(map4k(P | RW | US), VA + 0x123, UR, { pa: BigInt(DATA + 0x123) });
  });
  it('4.5.4 translates a 2 MiB page (PS = 1 in the PDE)', () => {
    check((w) => w.pt.map(0x4000_0000, 0x20_0000 * 3, { size: 2097152 }), 0x4001_2345, UR, {
      pa: BigInt(0x60_0000 + 0x1_2345),
    });
  });
  it('4.5.4 translates a 1 GiB page (PS = 1 in the PDPTE)', () => {
    check((w) => w.pt.map(0x80_0000_0000, 0x4000_0000, { size: 1073741824 }), 0x80_1234_5678, UR, {
      pa: 0x4000_0000n + 0x1234_5678n,
    });
  });
  it('4.5.4 PAT (bit 12) of a 2 MiB leaf is a memory-type bit, not an address bit and not reserved', () => {
    check(
      (w) => w.pt.map(0x4000_0000, 0x20_0000, { size: 2097152, flags: P | RW | US | _PAGE_PAT_LARGE }),
      0x4000_0010,
      UR,
      { pa: 0x20_0010n },
    );
  });
  it('4.5.4 PAT (bit 12) of a 1 GiB leaf is a memory-type bit, not an address bit', () => {
    check(
      (w) => w.pt.map(0x4000_0000, 0x4000_0000, { size: 1073741824, flags: P | US | _PAGE_PAT_LARGE }),
      0x4000_0010,
      UR,
      { pa: 0x4000_0010n },
    );
  });
  it('4.5.4 bit 7 of a PTE is PAT, not PS: a 4 KiB PTE with bit 7 set still maps 4 KiB', () => {
    check(map4k(P | US | 0x80n), VA + 8, UR, { pa: BigInt(DATA + 8) });
  });
  it('4.5.4 LA57: the PML5 index comes from bits 56:48', () => {
    const va = (3n << 48n) + 0x1000n;
    const [r] = check((w) => w.pt.map(va, DATA), va, UR, { pa: BigInt(DATA) }, { la57: true });
    expect(r.ok).toBe(true);
  });
  it('4.5 a kernel-half (upper canonical) address translates through PML4 entry 0x1ff-range indices', () => {
    const va = 0xffff_8880_0012_3000n;
    check((w) => w.pt.map(va, DATA, { flags: P | RW }), va + 0x10n, W, { pa: BigInt(DATA + 0x10) });
  });
  it('4.5.4 a physical address beyond RAM but below MAXPHYADDR is a valid translation', () => {
    check((w) => w.pt.map(VA, 2 ** 40), VA, UR, { pa: 2n ** 40n });
  });
});

describe('canonical addresses (Vol. 1 3.3.7.1; Vol. 3A 4.5, 6.15 #GP)', () => {
  it('4-level: bit 47 set without bits 63:48 is non-canonical (#GP)', () => {
    check(() => {}, 0x0000_8000_0000_0000n, R, { gp: true });
  });
  it('4-level: the sign-extended upper half is canonical (an unmapped one is #PF, not #GP)', () => {
    check(() => {}, 0xffff_8000_0000_0000n, R, { pf: 0 });
  });
  it('LA57: 0x0000_8000_0000_0000 is canonical with 5-level paging', () => {
    const va = 0x0000_8000_0000_0000n;
    check((w) => w.pt.map(va, DATA), va, UR, { pa: BigInt(DATA) }, { la57: true });
  });
  it('LA57: bit 56 set without bits 63:57 is non-canonical', () => {
    check(() => {}, 0x0100_0000_0000_0000n, R, { gp: true }, { la57: true });
  });
  it('LA57: 0xff00_0000_0000_0000 is canonical (upper half)', () => {
    check(() => {}, 0xff00_0000_0000_0000n, R, { pf: 0 }, { la57: true });
  });
});

describe('4.7 page-fault error code', () => {
  it('4.7 P = 0 for a not-present page; U/S = 1 for a user-mode read', () => {
    check(() => {}, VA, UR, { pf: PF_USER });
  });
  it('4.7 W/R = 1 for a write to a not-present page (supervisor: U/S = 0)', () => {
    check(() => {}, VA, W, { pf: PF_WRITE });
  });
  it('4.7 P = 1 for a protection violation: user read of a supervisor page', () => {
    check(map4k(P | RW), VA, UR, { pf: PF_P | PF_USER });
  });
  it('4.7 P | W | U for a user write to a read-only page', () => {
    check(map4k(P | US), VA, UW, { pf: PF_P | PF_WRITE | PF_USER });
  });
  it('4.7 I/D = 1 for a fetch from a not-present page when NXE = 1', () => {
    check(() => {}, VA, UX, { pf: PF_INSTR | PF_USER });
  });
  it('4.7 I/D = 0 for a fetch when NXE = 0 and SMEP = 0', () => {
    const setup = (w: World) => {
      w.cpu.nxe = false;
    };
    check(setup, VA, UX, { pf: PF_USER });
  });
  it('4.7 I/D = 1 for a fetch when SMEP = 1 even with NXE = 0', () => {
    check(
      (w) => {
        w.cpu.nxe = false;
        w.cpu.smep = true;
      },
      VA,
      X,
      { pf: PF_INSTR },
    );
  });
  it('4.7 RSVD = 1 (with P = 1) for a reserved bit in a present entry', () => {
    check(map4k(P | US | (1n << 50n)), VA, UR, { pf: PF_P | PF_RSVD | PF_USER });
  });
  it('4.7 CR2 holds the faulting linear address', () => {
    const w = makeWorld();
    w.mmu.translate(0, VA + 0x42, UR);
    expect(w.cpu.cr2).toBe(BigInt(VA + 0x42));
  });
  it('4.7 P = 0 in a non-leaf entry ends the walk with P = 0', () => {
    check(
      (w) => {
        w.pt.map(VA, DATA);
        const pd = w.pt.lookup(VA)[2];
        w.pt.writeEntry(pd.entryPa, pd.entry & ~P);
      },
      VA,
      UR,
      { pf: PF_USER },
    );
  });
});

describe('4.5 reserved bits (checked only in present entries)', () => {
  it('bits 51:MAXPHYADDR of a PTE are reserved', () => {
    check(map4k(P | US | (1n << 46n)), VA, UR, { pf: PF_P | PF_RSVD | PF_USER });
  });
  it('with MAXPHYADDR = 52 bit 51 is an address bit', () => {
    check(map4k(P | US | (1n << 51n)), VA, UR, { pa: BigInt(DATA) | (1n << 51n) }, { maxPhyAddr: 52 });
  });
  it('bits above MAXPHYADDR in a PDPTE (non-leaf) are reserved', () => {
    check(
      (w) => {
        w.pt.map(VA, DATA);
        const pdpte = w.pt.lookup(VA)[1];
        w.pt.writeEntry(pdpte.entryPa, pdpte.entry | (1n << 47n));
      },
      VA,
      R,
      { pf: PF_P | PF_RSVD },
    );
  });
  it('PS (bit 7) in a PML4E is reserved', () => {
    check(
      (w) => {
        w.pt.map(VA, DATA);
        const pml4e = w.pt.lookup(VA)[0];
        w.pt.writeEntry(pml4e.entryPa, pml4e.entry | _PAGE_PSE);
      },
      VA,
      R,
      { pf: PF_P | PF_RSVD },
    );
  });
  it('PS (bit 7) in a PML5E is reserved (LA57)', () => {
    check(
      (w) => {
        w.pt.map(VA, DATA);
        const pml5e = w.pt.lookup(VA)[0];
        w.pt.writeEntry(pml5e.entryPa, pml5e.entry | _PAGE_PSE);
      },
      VA,
      R,
      { pf: PF_P | PF_RSVD },
      { la57: true },
    );
  });
  it('a 2 MiB leaf with bits 20:13 set (misaligned frame) is reserved', () => {
    check(
      (w) => {
        w.pt.map(0x4000_0000, 0x20_0000, { size: 2097152 });
        const pde = w.pt.lookup(0x4000_0000)[2];
        w.pt.writeEntry(pde.entryPa, pde.entry | (1n << 13n));
      },
      0x4000_0000,
      UR,
      { pf: PF_P | PF_RSVD | PF_USER },
    );
  });
  it('a 1 GiB leaf with bits 29:13 set (misaligned frame) is reserved', () => {
    check(
      (w) => {
        w.pt.map(0x4000_0000, 0x4000_0000, { size: 1073741824 });
        const pdpte = w.pt.lookup(0x4000_0000)[1];
        w.pt.writeEntry(pdpte.entryPa, pdpte.entry | (1n << 29n));
      },
      0x4000_0000,
      UR,
      { pf: PF_P | PF_RSVD | PF_USER },
    );
  });
  it('XD (bit 63) is reserved when NXE = 0', () => {
    check(
      (w) => {
        w.cpu.nxe = false;
        w.pt.map(VA, DATA, { flags: P | US | _PAGE_NX });
      },
      VA,
      UR,
      { pf: PF_P | PF_RSVD | PF_USER },
    );
  });
  it('reserved bits of a not-present entry are ignored (P = 0 fault, no RSVD)', () => {
    check(map4k(US | (1n << 50n) | _PAGE_PSE), VA, UR, { pf: PF_USER });
  });
  it('a reserved-bit fault leaves A untouched', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA, { flags: P | US | (1n << 48n), tableFlags: P | RW | US });
    w.mmu.translate(0, VA, UR);
    for (const s of w.pt.lookup(VA)) expect(s.entry & _PAGE_ACCESSED).toBe(0n);
  });
});

describe('4.6 access rights', () => {
  it('4.6.1 XD in the leaf blocks fetches when NXE = 1', () => {
    check(map4k(P | US | _PAGE_NX), VA, UX, { pf: PF_P | PF_INSTR | PF_USER });
  });
  it('4.6.1 XD in a non-leaf entry (PDE) blocks fetches too', () => {
    check(map4k(P | US, P | RW | US | _PAGE_NX), VA, UX, { pf: PF_P | PF_INSTR | PF_USER });
  });
  it('4.6.1 XD does not block reads', () => {
    check(map4k(P | US | _PAGE_NX), VA, UR, { pa: BigInt(DATA) });
  });
  it('4.6.1 R/W = 0 in a non-leaf entry makes the page read-only for user writes', () => {
    check(map4k(P | RW | US, P | US), VA, UW, { pf: PF_P | PF_WRITE | PF_USER });
  });
  it('4.6.1 U/S = 0 in a non-leaf entry makes the page a supervisor page', () => {
    check(map4k(P | RW | US, P | RW), VA, UR, { pf: PF_P | PF_USER });
  });
  it('4.6.1 CR0.WP = 0: a supervisor write to a read-only supervisor page succeeds', () => {
    check(
      (w) => {
        w.cpu.wp = false;
        w.pt.map(VA, DATA, { flags: P });
      },
      VA,
      W,
      { pa: BigInt(DATA) },
    );
  });
  it('4.6.1 CR0.WP = 1: a supervisor write to a read-only supervisor page faults', () => {
    check(map4k(P), VA, W, { pf: PF_P | PF_WRITE });
  });
  it('4.6.1 CR0.WP = 0: a supervisor write to a read-only user page succeeds (SMAP off)', () => {
    check(
      (w) => {
        w.cpu.wp = false;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      W,
      { pa: BigInt(DATA) },
    );
  });
  it('4.6.1 CR0.WP = 1: a supervisor write to a read-only user page faults', () => {
    check(map4k(P | US), VA, W, { pf: PF_P | PF_WRITE });
  });
  it('4.6.1 CR0.WP does not help user-mode writes to read-only pages', () => {
    check(
      (w) => {
        w.cpu.wp = false;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      UW,
      { pf: PF_P | PF_WRITE | PF_USER },
    );
  });
  it('4.6.1 SMEP = 1: a supervisor fetch from a user page faults with I/D', () => {
    check(
      (w) => {
        w.cpu.smep = true;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      X,
      { pf: PF_P | PF_INSTR },
    );
  });
  it('4.6.1 SMEP = 0: a supervisor fetch from a user page is allowed', () => {
    check(map4k(P | US), VA, X, { pa: BigInt(DATA) });
  });
  it('4.6.1 SMEP does not affect supervisor fetches from supervisor pages', () => {
    check(
      (w) => {
        w.cpu.smep = true;
        w.pt.map(VA, DATA, { flags: P });
      },
      VA,
      X,
      { pa: BigInt(DATA) },
    );
  });
  it('4.6.1 SMAP = 1, AC = 0: a supervisor read of a user page faults', () => {
    check(
      (w) => {
        w.cpu.smap = true;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      R,
      { pf: PF_P },
    );
  });
  it('4.6.1 SMAP = 1, AC = 1: an explicit supervisor read of a user page is allowed', () => {
    check(
      (w) => {
        w.cpu.smap = true;
        w.cpu.ac = true;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      R,
      { pa: BigInt(DATA) },
    );
  });
  it('4.6.1 SMAP = 1, AC = 1: an implicit supervisor access to a user page still faults', () => {
    check(
      (w) => {
        w.cpu.smap = true;
        w.cpu.ac = true;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      IMPLICIT_R,
      { pf: PF_P },
    );
  });
  it('4.6.1 SMAP = 1, AC = 1, WP = 1: a supervisor write to a read-only user page faults', () => {
    check(
      (w) => {
        w.cpu.smap = true;
        w.cpu.ac = true;
        w.pt.map(VA, DATA, { flags: P | US });
      },
      VA,
      W,
      { pf: PF_P | PF_WRITE },
    );
  });
  it('4.6.1 SMAP does not affect supervisor pages', () => {
    check(
      (w) => {
        w.cpu.smap = true;
        w.pt.map(VA, DATA, { flags: P | RW });
      },
      VA,
      W,
      { pa: BigInt(DATA) },
    );
  });
  it('4.6.1 SMAP = 0: an implicit supervisor read of a user page is allowed', () => {
    check(map4k(P | US), VA, IMPLICIT_R, { pa: BigInt(DATA) });
  });
});

describe('4.6.2 protection keys', () => {
  const keyed =
    (key: number, pkru: number, flags = P | RW | US) =>
    (w: World) => {
      w.cpu.pke = true;
      w.cpu.pkru = pkru;
      w.pt.map(VA, DATA, { flags: pteMkpkey(flags, key) });
    };
  it('AD = 1 denies user reads with PK = 1', () => {
    check(keyed(5, 1 << 10), VA, UR, { pf: PF_P | PF_USER | PF_PK });
  });
  it('WD = 1 denies user writes with PK = 1 but allows reads', () => {
    check(keyed(3, 1 << 7), VA, UW, { pf: PF_P | PF_WRITE | PF_USER | PF_PK });
    check(keyed(3, 1 << 7), VA, UR, { pa: BigInt(DATA) });
  });
  it('WD = 1 denies supervisor writes only when CR0.WP = 1', () => {
    check(keyed(2, 1 << 5), VA, W, { pf: PF_P | PF_WRITE | PF_PK });
    const noWp = (w: World) => {
      keyed(2, 1 << 5)(w);
      w.cpu.wp = false;
    };
    check(noWp, VA, W, { pa: BigInt(DATA) });
  });
  it('AD = 1 denies supervisor reads of user pages too', () => {
    check(keyed(1, 1 << 2), VA, R, { pf: PF_P | PF_PK });
  });
  it('instruction fetches are not affected by protection keys', () => {
    check(keyed(4, 0b11 << 8, P | US), VA, UX, { pa: BigInt(DATA) });
  });
  it('supervisor-mode addresses are not affected by protection keys', () => {
    check(keyed(6, 0b11 << 12, P | RW), VA, W, { pa: BigInt(DATA) });
  });
  it('with CR4.PKE = 0 the key bits are ignored', () => {
    const setup = (w: World) => {
      keyed(7, 0xffff_ffff)(w);
      w.cpu.pke = false;
    };
    check(setup, VA, UW, { pa: BigInt(DATA) });
  });
  it('a key that is not denied lets the access through', () => {
    check(keyed(9, 1 << 0), VA, UW, { pa: BigInt(DATA) });
  });
  it('PK is reported together with a protection violation (read-only page, WD = 1)', () => {
    check(keyed(2, 1 << 5, P | US), VA, UW, { pf: PF_P | PF_WRITE | PF_USER | PF_PK });
  });
});

describe('4.8 accessed and dirty flags', () => {
  const entries = (w: World) => w.pt.lookup(VA).map((s) => s.entry);
  for (const kind of WALKS) {
    it(`a read sets A in every entry used and D nowhere (${kind} walk)`, () => {
      const w = makeWorld();
      w.pt.map(VA, DATA, { flags: P | RW | US, tableFlags: P | RW | US });
      for (const e of entries(w)) expect(e & _PAGE_ACCESSED).toBe(0n);
      runWalk(kind, w, VA, UR);
      for (const e of entries(w)) {
        expect(e & _PAGE_ACCESSED).toBe(_PAGE_ACCESSED);
      }
      expect(entries(w)[3] & _PAGE_DIRTY).toBe(0n);
    });
    it(`a write sets D in the leaf only (${kind} walk)`, () => {
      const w = makeWorld();
      w.pt.map(VA, DATA, { flags: P | RW | US, tableFlags: P | RW | US });
      runWalk(kind, w, VA, UW);
      const es = entries(w);
      expect(es[3] & _PAGE_DIRTY).toBe(_PAGE_DIRTY);
      for (const e of es.slice(0, 3)) expect(e & _PAGE_DIRTY).toBe(0n);
    });
    it(`a faulting access sets no A or D (${kind} walk)`, () => {
      const w = makeWorld();
      w.pt.map(VA, DATA, { flags: P | US, tableFlags: P | RW | US });
      const r = runWalk(kind, w, VA, UW);
      expect(r.ok).toBe(false);
      for (const e of entries(w)) expect(e & (_PAGE_ACCESSED | _PAGE_DIRTY)).toBe(0n);
    });
  }
  it('a write to a 2 MiB page sets D in the PDE leaf', () => {
    const w = makeWorld();
    w.pt.map(0x4000_0000, 0x20_0000, { size: 2097152 });
    expect(w.mmu.translate(0, 0x4000_0008, UW).ok).toBe(true);
    const pde = w.pt.lookup(0x4000_0000)[2];
    expect(pde.entry & (_PAGE_DIRTY | _PAGE_ACCESSED)).toBe(_PAGE_DIRTY | _PAGE_ACCESSED);
  });
});

describe('4.10 TLBs', () => {
  it('4.10.2 a TLB entry stays usable after the PTE is cleared, until INVLPG (4.10.4.1)', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA);
    expect(w.mmu.translate(0, VA, UR).ok).toBe(true);
    w.pt.unmap(VA);
    expect(w.mmu.translate(0, VA, UR)).toMatchObject({ ok: true, pa: BigInt(DATA) });
    w.mmu.invlpg(0, VA);
    expect(w.mmu.translate(0, VA, UR)).toMatchObject({ ok: false, errorCode: PF_USER });
  });
  it('4.10.4.1 a CR3 load flushes non-global entries and keeps global ones', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA, { flags: P | RW | US });
    w.pt.map(VA + 0x1000, DATA + 0x1000, { flags: P | RW | US | _PAGE_GLOBAL });
    w.mmu.translate(0, VA, UR);
    w.mmu.translate(0, VA + 0x1000, UR);
    w.pt.unmap(VA);
    w.pt.unmap(VA + 0x1000);
    w.mmu.loadCr3(0, w.pt.pgd);
    expect(w.mmu.translate(0, VA, UR).ok).toBe(false);
    expect(w.mmu.translate(0, VA + 0x1000, UR).ok).toBe(true);
    w.mmu.flushAll(0);
    expect(w.mmu.translate(0, VA + 0x1000, UR).ok).toBe(false);
  });
  it('4.10.1 entries are tagged by PCID; CR3 with no-flush keeps them', () => {
    const w = makeWorld();
    w.cpu.pcide = true;
    w.mmu.loadCr3(0, w.pt.pgd, { pcid: 1 });
    w.pt.map(VA, DATA);
    w.mmu.translate(0, VA, UR);
    w.pt.unmap(VA);
    w.mmu.loadCr3(0, w.pt.pgd, { pcid: 2 });
    expect(w.mmu.translate(0, VA, UR).ok).toBe(false); // PCID 2 has no entry
    w.mmu.loadCr3(0, w.pt.pgd, { pcid: 1, noFlush: true });
    expect(w.mmu.translate(0, VA, UR).ok).toBe(true); // PCID 1's stale entry survives
    w.mmu.loadCr3(0, w.pt.pgd, { pcid: 1 });
    expect(w.mmu.translate(0, VA, UR).ok).toBe(false);
  });
  it('4.10.4.3 a stale read-only entry faults a write, the fault drops it, and the retry walks', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA, { flags: P | US });
    w.mmu.translate(0, VA, UR);
    w.pt.writeEntry(w.pt.leaf(VA)!.entryPa, BigInt(DATA) | P | RW | US | _PAGE_ACCESSED);
    expect(w.mmu.translate(0, VA, UW)).toMatchObject({ ok: false, errorCode: PF_P | PF_WRITE | PF_USER });
    expect(w.mmu.translate(0, VA, UW).ok).toBe(true);
  });
  it('4.8 a write through a cached entry with D = 0 walks again and sets D', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA, { flags: P | RW | US });
    w.mmu.translate(0, VA, UR);
    expect(w.pt.leaf(VA)!.entry & _PAGE_DIRTY).toBe(0n);
    w.mmu.translate(0, VA, UW);
    expect(w.pt.leaf(VA)!.entry & _PAGE_DIRTY).toBe(_PAGE_DIRTY);
  });
  it('INVPCID type 0 drops one address of one PCID', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA);
    w.mmu.translate(0, VA, UR);
    w.pt.unmap(VA);
    w.mmu.invpcid(0, 0, 5, VA);
    expect(w.mmu.translate(0, VA, UR).ok).toBe(true);
    w.mmu.invpcid(0, 0, 0, VA);
    expect(w.mmu.translate(0, VA, UR).ok).toBe(false);
  });
});

describe('walker injection', () => {
  it('an Mmu with walker: referenceWalk gives the same answers through the fast entry point', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA, { flags: P | US });
    const mmu = new Mmu(w.mem, { walker: referenceWalk });
    mmu.switchMm(0, w.pt);
    expect(mmu.access(0, VA + 4, 4)).toBe(DATA + 4);
    expect(mmu.access(0, VA, 2 | 4)).toBe(-1);
    expect(mmu.fault).toMatchObject({ kind: 'PF', errorCode: PF_P | PF_WRITE | PF_USER });
  });
  it('the MMU really calls the injected walker', () => {
    const w = makeWorld();
    let calls = 0;
    const mmu = new Mmu(w.mem, {
      walker: (mem, regs, va, access) => {
        calls++;
        return referenceWalk(mem, regs, va, access);
      },
    });
    mmu.switchMm(0, w.pt);
    mmu.translate(0, VA, UR);
    mmu.translate(0, VA, UR);
    expect(calls).toBe(2);
  });
});

describe('4.1.4 paging features enumerated by CPUID', () => {
  const without = (...names: (keyof CpuFeatures)[]): WorldOptions => ({
    cpuFeatures: Object.fromEntries(names.map((n) => [n, false])),
  });
  const map1g = (w: World) => w.pt.map(0x80_0000_0000, 0x4000_0000, { size: 1073741824 });

  it('the default CPU is a modern one: every feature, NXE and PGE on, the other CR4 bits off', () => {
    const w = makeWorld();
    expect(w.mmu.features).toEqual(MODERN_CPU_FEATURES);
    expect(CPU_FEATURE_NAMES.every((n) => MODERN_CPU_FEATURES[n])).toBe(true);
    expect([w.cpu.nxe, w.cpu.pge]).toEqual([true, true]);
    expect([w.cpu.smep, w.cpu.smap, w.cpu.pke, w.cpu.pks, w.cpu.pcide]).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  describe('Page1GB: 1 GiB pages', () => {
    it('without it, PS = 1 in a PDPTE is a reserved bit: #PF with P and RSVD, in all three walks', () => {
      check(map1g, 0x80_1234_5678, UR, { pf: PF_P | PF_RSVD | PF_USER }, without('pdpe1gb'));
      check(map1g, 0x80_1234_5678, W, { pf: PF_P | PF_RSVD | PF_WRITE }, without('pdpe1gb'));
    });
    it('without it, the faulting walk changes no entry (no A bit in the PDPTE)', () => {
      const w = makeWorld(without('pdpe1gb'));
      map1g(w);
      const before = w.pt.lookup(0x80_0000_0000).map((s) => s.entry);
      expect(before[1] & _PAGE_ACCESSED).toBe(0n);
      w.mmu.translate(0, 0x80_0000_0000, UR);
      expect(w.pt.lookup(0x80_0000_0000).map((s) => s.entry)).toEqual(before);
    });
    it('without it, 2 MiB pages and PDPTEs that point to a page directory still work', () => {
      check(
        (w) => w.pt.map(0x4000_0000, 0x20_0000 * 3, { size: 2097152 }),
        0x4001_2345,
        UR,
        { pa: BigInt(0x60_0000 + 0x1_2345) },
        without('pdpe1gb'),
      );
      check(map4k(P | RW | US), VA + 8, UW, { pa: BigInt(DATA + 8) }, without('pdpe1gb'));
    });
  });

  describe('NX: execute-disable', () => {
    it('without it, EFER.NXE starts clear and cannot be set (#GP on hardware): a typed error, nothing changes', () => {
      const w = makeWorld(without('nx'));
      expect(w.cpu.nxe).toBe(false);
      expect(() => {
        w.cpu.nxe = true;
      }).toThrow(UnsupportedCpuFeatureError);
      expect(() => {
        w.cpu.nxe = true;
      }).toThrow(/IA32_EFER\.NXE cannot be set.*#GP/);
      expect(w.cpu.nxe).toBe(false);
      w.cpu.nxe = false; // clearing is always allowed
    });
    it('without it, bit 63 of a present entry is reserved', () => {
      check(map4k(P | US | _PAGE_NX), VA, UR, { pf: PF_P | PF_RSVD | PF_USER }, without('nx'));
    });
    it('without it, no fetch is blocked and a fetch fault does not report I/D (SMEP off)', () => {
      check(map4k(P | US), VA, UX, { pa: BigInt(DATA) }, without('nx'));
      check(map4k(P), VA, X, { pa: BigInt(DATA) }, without('nx'));
      check(() => {}, VA, UX, { pf: PF_USER }, without('nx'));
    });
  });

  describe('LA57: 5-level paging', () => {
    it('without it, CR4.LA57 cannot be set, and switchMm to a 5-level address space changes nothing', () => {
      const w = makeWorld(without('la57'));
      expect(() => {
        w.cpu.la57 = true;
      }).toThrow(UnsupportedCpuFeatureError);
      const pt5 = new PageTables(w.mem, { la57: true });
      const before = { cr3: w.cpu.cr3, mm: w.cpu.mm, la57: w.cpu.la57 };
      expect(() => w.mmu.switchMm(0, pt5)).toThrow(/CR4\.LA57 cannot be set/);
      expect({ cr3: w.cpu.cr3, mm: w.cpu.mm, la57: w.cpu.la57 }).toEqual(before);
      expect(pt5.cpumask.has(0)).toBe(false);
    });
    it('without it, 4-level paging works and bit 47 must be sign-extended (#GP otherwise)', () => {
      check(map4k(P | US), VA, UR, { pa: BigInt(DATA) }, without('la57'));
      check(() => {}, 0x0000_8000_0000_0000n, R, { gp: true }, without('la57'));
    });
  });

  describe('SMEP, SMAP, PKU, PKS, PCID: the control bits they allow', () => {
    const cases = [
      ['smep', 'smep', 'CR4.SMEP'],
      ['smap', 'smap', 'CR4.SMAP'],
      ['pku', 'pke', 'CR4.PKE'],
      ['pks', 'pks', 'CR4.PKS'],
      ['pcid', 'pcide', 'CR4.PCIDE'],
      ['pge', 'pge', 'CR4.PGE'],
    ] as const;
    for (const [feature, bit, name] of cases) {
      it(`without ${feature.toUpperCase()}, setting ${name} throws and leaves it clear; with it, it can be set`, () => {
        const w = makeWorld(without(feature));
        w.cpu[bit] = false;
        expect(() => {
          w.cpu[bit] = true;
        }).toThrow(UnsupportedCpuFeatureError);
        expect(w.cpu[bit]).toBe(false);
        const m = makeWorld();
        m.cpu[bit] = true;
        expect(m.cpu[bit]).toBe(true);
      });
    }
    it('without SMEP a supervisor fetch from a user page is allowed (the bit stays clear)', () => {
      check(map4k(P | US), VA, X, { pa: BigInt(DATA) }, without('smep'));
    });
    it('without SMAP a supervisor read of a user page is allowed, implicit or not', () => {
      check(map4k(P | US), VA, IMPLICIT_R, { pa: BigInt(DATA) }, without('smap'));
    });
    it('without PKU the key bits of a user page are ignored whatever PKRU says', () => {
      const setup = (w: World) => {
        w.cpu.pkru = 0xffff_ffff;
        w.pt.map(VA, DATA, { flags: pteMkpkey(P | RW | US, 5) });
      };
      check(setup, VA, UW, { pa: BigInt(DATA) }, without('pku'));
    });
  });

  describe('4.6.2 PKS: protection keys for supervisor-mode addresses', () => {
    const keyed =
      (key: number, pkrs: number, flags = P | RW) =>
      (w: World) => {
        w.cpu.pks = true;
        w.cpu.pkrs = pkrs;
        w.pt.map(VA, DATA, { flags: pteMkpkey(flags, key) });
      };
    it('AD = 1 in IA32_PKRS denies supervisor reads of a supervisor page with PK = 1', () => {
      check(keyed(5, 1 << 10), VA, R, { pf: PF_P | PF_PK });
    });
    it('AD = 1 also marks a user-mode access to the supervisor page with PK', () => {
      check(keyed(5, 1 << 10), VA, UR, { pf: PF_P | PF_USER | PF_PK });
    });
    it('WD = 1 denies supervisor writes when CR0.WP = 1, not when WP = 0; reads pass', () => {
      check(keyed(3, 1 << 7), VA, W, { pf: PF_P | PF_WRITE | PF_PK });
      check(keyed(3, 1 << 7), VA, R, { pa: BigInt(DATA) });
      const noWp = (w: World) => {
        keyed(3, 1 << 7)(w);
        w.cpu.wp = false;
      };
      check(noWp, VA, W, { pa: BigInt(DATA) });
    });
    it('fetches are not checked against PKRS', () => {
      check(keyed(4, 0b11 << 8, P), VA, X, { pa: BigInt(DATA) });
    });
    it('user-mode addresses are checked against PKRU, not PKRS', () => {
      check(keyed(6, 0b11 << 12, P | RW | US), VA, W, { pa: BigInt(DATA) });
    });
    it('with CR4.PKS = 0 the key bits of a supervisor page are ignored', () => {
      const setup = (w: World) => {
        keyed(7, 0xffff_ffff)(w);
        w.cpu.pks = false;
      };
      check(setup, VA, W, { pa: BigInt(DATA) });
    });
    it('a TLB hit applies PKRS too: a key denied after the fill faults without a walk', () => {
      const w = makeWorld();
      keyed(2, 0)(w);
      expect(w.mmu.translate(0, VA, R).ok).toBe(true);
      const misses = w.cpu.tlb.misses;
      w.cpu.pkrs = 1 << 4; // WRMSR: AD for key 2; the TLB caches the key, not its rights (SDM 4.10.2.2)
      expect(w.mmu.translate(0, VA, R)).toMatchObject({ ok: false, errorCode: PF_P | PF_PK });
      expect(w.cpu.tlb.misses).toBe(misses);
    });
  });

  describe('PGE: global pages', () => {
    const globalStaysAfterCr3Load = (w: World): boolean => {
      w.pt.map(VA, DATA, { flags: P | RW | US | _PAGE_GLOBAL });
      w.mmu.translate(0, VA, UR);
      w.pt.unmap(VA);
      w.mmu.loadCr3(0, w.pt.pgd);
      return w.mmu.translate(0, VA, UR).ok;
    };
    it('with CR4.PGE = 1 (the default) a global translation survives a CR3 load', () => {
      expect(globalStaysAfterCr3Load(makeWorld())).toBe(true);
    });
    it('with CR4.PGE = 0 the G bit is ignored: a CR3 load flushes it (4.10.2.4)', () => {
      const w = makeWorld();
      w.cpu.pge = false;
      expect(globalStaysAfterCr3Load(w)).toBe(false);
      expect(globalStaysAfterCr3Load(makeWorld(without('pge')))).toBe(false);
    });
    it('the kernel-form walk fills the TLB the same way', () => {
      for (const pge of [true, false]) {
        const w = makeWorld();
        w.cpu.pge = pge;
        w.pt.map(VA, DATA, { flags: P | RW | US | _PAGE_GLOBAL });
        expect(runSync(w.mmu.translateKernel(0, VA, UR)).ok).toBe(true);
        w.pt.unmap(VA);
        w.mmu.loadCr3(0, w.pt.pgd);
        expect(w.mmu.translate(0, VA, UR).ok).toBe(pge);
      }
    });
  });

  it('INVPCID: without it the instruction is #UD (a typed error) and the TLB keeps its entries', () => {
    const w = makeWorld(without('invpcid'));
    w.pt.map(VA, DATA);
    w.mmu.translate(0, VA, UR);
    w.pt.unmap(VA);
    expect(() => w.mmu.invpcid(0, 2)).toThrow(/INVPCID does not exist.*#UD/);
    expect(w.mmu.translate(0, VA, UR).ok).toBe(true);
  });

  it('MAXPHYADDR = 36 (the smallest): bit 36 of an entry is reserved', () => {
    check(map4k(P | US | (1n << 36n)), VA, UR, { pf: PF_P | PF_RSVD | PF_USER }, { maxPhyAddr: 36 });
    check(map4k(P | US | (1n << 35n)), VA, UR, { pa: BigInt(DATA) | (1n << 35n) }, { maxPhyAddr: 36 });
  });

  it('walks given an impossible register state (a control bit without its feature) throw a typed error', () => {
    const w = makeWorld();
    w.pt.map(VA, DATA);
    const base = w.cpu.regs();
    for (const [bit, feature] of [
      ['la57', 'la57'],
      ['smep', 'smep'],
      ['smap', 'smap'],
      ['pke', 'pku'],
      ['pks', 'pks'],
      ['nxe', 'nx'],
    ] as const) {
      const regs = { ...base, [bit]: true, features: { ...MODERN_CPU_FEATURES, [feature]: false } };
      expect(() => referenceWalk(w.mmu.memoryView, regs, BigInt(VA), UR), bit).toThrow(
        UnsupportedCpuFeatureError,
      );
      expect(() => runSync(kernelWalk(w.mem, regs, BigInt(VA), UR)), bit).toThrow(UnsupportedCpuFeatureError);
    }
    // Without `features` (as Lab 1's tests build registers) every setting is allowed.
    const { features: _, ...bare } = { ...base, smep: true, nxe: false };
    expect(referenceWalk(w.mmu.memoryView, bare, BigInt(VA), UR).ok).toBe(true);
  });

  it('cpuFeatures is checked: an unknown name or a non-boolean value is an InvalidArgumentError', () => {
    const mem = makeWorld().mem;
    expect(() => new Mmu(mem, { cpuFeatures: { la58: true } as Partial<CpuFeatures> })).toThrow(
      InvalidArgumentError,
    );
    expect(() => new Mmu(mem, { cpuFeatures: { nx: 0 } as unknown as Partial<CpuFeatures> })).toThrow(
      /'nx' must be true or false/,
    );
    expect(new Mmu(mem, { cpuFeatures: { smap: false } }).features).toEqual({
      ...MODERN_CPU_FEATURES,
      smap: false,
    });
  });

  it('explainWalk names the reserved bits and the features the CPU lacks', () => {
    const w = makeWorld(without('pdpe1gb', 'pks'));
    map1g(w);
    const { result, lines } = explainWalk(w.mem, w.cpu.regs(), 0x80_0000_0000n, UR);
    expect(result).toMatchObject({ ok: false, errorCode: PF_P | PF_RSVD | PF_USER });
    expect(lines[0]).toContain('CPU without pdpe1gb, pks');
    expect(lines.at(-1)).toBe('   reserved bits set in the PDPTE: 0x80 (PS: this CPU has no 1 GiB pages)');
  });
});
