import {
  entryFlagNames,
  formatErrorCode,
  type PagingRegs,
  referenceWalk,
  type WalkAccess,
  type WalkResult,
} from '@spf/pagetable';
import { Prng } from '@spf/machine';
import {
  PageTableBuilder,
  PTE_A,
  PTE_P,
  PTE_RW,
  PTE_US,
  PTE_XD,
  SIZE_2M,
  SIZE_4K,
  vaOf,
} from '../lab1/page-table-builder.js';
import { checkPracticeSeed, type PracticeExercise } from './practice.js';

const hex = (v: bigint | number) => `0x${v.toString(16)}`;
const LEVEL_NAMES = ['PML4E', 'PDPTE', 'PDE', 'PTE'] as const;

/** A random state of one mapping: indices, size, leaf and upper flags. */
type Mapping = { i: [number, number, number, number]; size: bigint; leaf: bigint; upper: bigint; pa: bigint };

function pick<T>(rng: Prng, xs: readonly T[]): T {
  return xs[rng.below(xs.length)];
}

/** Flags where each of RW, US, XD is set at random, P nearly always. */
function randomFlags(rng: Prng, present: number): bigint {
  let f = rng.below(100) < present ? PTE_P : 0n;
  if (rng.below(3) > 0) f |= PTE_RW;
  if (rng.below(3) > 0) f |= PTE_US;
  if (rng.below(4) === 0) f |= PTE_XD;
  return f | PTE_A;
}

/**
 * A Lab 1 practice exercise: a random 4-level page table (two or three mappings, 4 KiB or 2 MiB pages,
 * random P/RW/US/XD bits at every level), control-register bits, and one access to translate by hand. The
 * answer is what `referenceWalk` of @spf/pagetable (the SDM's walk that grades Lab 1) does with that
 * state: the entries it reads and the physical address or the #PF error code.
 */
export function lab1Practice(seed: number): PracticeExercise {
  checkPracticeSeed(seed);
  const rng = new Prng(seed ^ 0x1ab1);
  const b = new PageTableBuilder();
  const maps: Mapping[] = [];
  const n = 2 + rng.below(2);
  const i0 = rng.below(256);
  for (let k = 0; maps.length < n && k < 50; k++) {
    const size = rng.below(4) === 0 ? SIZE_2M : SIZE_4K;
    // Mappings often share upper levels (siblings in one table), so the walk has choices to get right.
    const i: Mapping['i'] = [
      maps.length > 0 && rng.below(3) > 0 ? maps[0].i[0] : i0 + maps.length,
      maps.length > 0 && rng.below(2) === 0 ? maps[0].i[1] : rng.below(512),
      rng.below(512),
      size === SIZE_2M ? 0 : rng.below(512),
    ];
    // Two mappings may not share a page directory entry (a 2 MiB leaf there would be taken for a table).
    if (maps.some((m) => m.i[0] === i[0] && m.i[1] === i[1] && m.i[2] === i[2])) continue;
    const pa =
      size === SIZE_2M
        ? BigInt(0x200 + rng.below(0x200)) * SIZE_2M
        : BigInt(0x40000 + rng.below(0x4000)) * SIZE_4K;
    const leaf = randomFlags(rng, 85);
    const upper = rng.below(4) === 0 ? randomFlags(rng, 100) : PTE_P | PTE_RW | PTE_US | PTE_A;
    const m: Mapping = { i, size, leaf, upper, pa };
    maps.push(m);
    b.map(vaOf(...m.i), m.pa, { size: m.size, leaf: m.leaf, upper: m.upper });
  }
  const target = pick(rng, maps);
  const unmapped = rng.below(6) === 0;
  const offset = BigInt(rng.below(Number(SIZE_4K))) & ~7n;
  const idx = [...target.i] as Mapping['i'];
  if (unmapped) idx[target.size === SIZE_2M ? 2 : 3] = (idx[target.size === SIZE_2M ? 2 : 3] + 1) % 512;
  const va = vaOf(...idx, target.size === SIZE_2M ? offset + BigInt(rng.below(512)) * SIZE_4K : offset);
  const access: WalkAccess = {
    kind: pick(rng, ['read', 'write', 'fetch'] as const),
    user: rng.below(2) === 0,
  };
  const regs: PagingRegs = b.regs({
    wp: rng.below(4) > 0,
    smep: rng.below(2) === 0,
    smap: rng.below(3) === 0,
  });

  // The entries of every table, as the student reads them.
  const entries = [...b.mem.entries.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1));
  const question = [
    `CR3 = ${hex(regs.cr3)}   CR0.WP = ${+regs.wp}   CR4.SMEP = ${+regs.smep}   CR4.SMAP = ${+regs.smap}   EFER.NXE = ${+regs.nxe}   EFLAGS.AC = 0   (4-level paging)`,
    'Physical memory: every non-zero 8-byte entry of the page tables (bits: P=0, RW=1, US=2, A=5, D=6, PS=7, XD=63):',
    ...entries.map(([pa, e]) => `  pa ${hex(pa).padStart(9)}: ${hex(e).padStart(20)}`),
    '',
    `Question: a ${access.user ? 'user-mode' : 'supervisor-mode'} ${access.kind === 'fetch' ? 'instruction fetch from' : access.kind === 'write' ? 'write to' : 'read of'} va ${hex(va)}.`,
    'Which entries does the walk read, and what is the physical address, or the #PF error code (P, W/R, U/S, RSVD, I/D)?',
  ];

  // The answer: the real walk over the same memory (A/D updates left out, so the state stays as shown).
  const reads: string[] = [];
  let level = 0;
  const result: WalkResult = referenceWalk(
    {
      readEntry(pa: bigint): bigint {
        const e = b.mem.readEntry(pa);
        const l = level++;
        const index = Number((pa & 0xfffn) / 8n);
        reads.push(
          `${LEVEL_NAMES[l] ?? '?'}[${index}] @ pa ${hex(pa)} = ${hex(e)} [${entryFlagNames(e, (4 - l) as 1 | 2 | 3 | 4).join(' ')}]`,
        );
        return e;
      },
      setBits(): void {},
    },
    regs,
    va,
    access,
  );
  const outcome = result.ok
    ? `-> pa ${hex(result.pa)} (${result.pageSize === 4096 ? '4 KiB' : '2 MiB'} page)`
    : result.fault === 'GP'
      ? '-> #GP (not canonical)'
      : `-> #PF, error code ${hex(result.errorCode)} (${formatErrorCode(result.errorCode)}), CR2 = ${hex(result.cr2)}`;
  return {
    lab: 'lab1',
    seed,
    title: 'Lab 1 practice: translate an address by hand',
    question,
    answer: [...reads, outcome],
    facts: {
      va: hex(va),
      access: `${access.user ? 'user' : 'supervisor'} ${access.kind}`,
      result: result.ok
        ? `pa ${hex(result.pa)}`
        : result.fault === 'GP'
          ? '#GP'
          : `#PF ${hex(result.errorCode)}`,
      reads: String(reads.length),
    },
  };
}
