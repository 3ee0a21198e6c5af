import { canonicalize } from './canonical.js';
import {
  type Level,
  levelShift,
  levelTableNames,
  _PAGE_PRESENT,
  _PAGE_PSE,
  PAGE_SIZE,
} from './entry-bits.js';
import { entryFlagNames } from './entry-format.js';
import { entryTablePa, type PageTables, type VirtAddr } from './page-tables.js';
import { FrameState } from './physical-memory.js';
import { ptePfn } from './pte.js';

/** Options of {@link dumpPageTables}. */
export type DumpOptions = {
  /** Also list non-present, non-zero entries (swap and PROT_NONE entries). Default true. */
  readonly nonPresent?: boolean;
  /** Stop after this many lines (default 10000); a final line says how many were left out. */
  readonly maxLines?: number;
};

const hex = (v: bigint | number, pad = 0): string => `0x${v.toString(16).padStart(pad, '0')}`;

/**
 * A text dump of the page-table tree for the virtual range `[start, end)`, one line per non-empty entry,
 * indented by level, in the spirit of arch/x86/mm/dump_pagetables.c (which prints ranges instead):
 *
 * ```
 * PML4[000] 0x0000000000003067 -> table 0x3000 [P RW US A D]
 *   PDPT[000] 0x0000000000004067 -> table 0x4000 [P RW US A D]
 *     PD[000] 0x0000000000005067 -> table 0x5000 [P RW US A D]
 *       PT[001] 0x0000000000123067 va 0x1000 -> pa 0x123000 4K [P RW US A D]
 * ```
 */
export function dumpPageTables(
  pt: PageTables,
  start: VirtAddr = 0,
  end?: VirtAddr,
  opts: DumpOptions = {},
): string {
  const bits = pt.la57 ? 57n : 48n;
  const s = BigInt(start) & ((1n << bits) - 1n);
  const e =
    end === undefined
      ? 1n << bits
      : BigInt(end) === 1n << 64n
        ? 1n << bits
        : BigInt(end) & ((1n << bits) - 1n) || 1n << bits;
  const showNp = opts.nonPresent ?? true;
  const max = opts.maxLines ?? 10000;
  const lines: string[] = [];
  let dropped = 0;
  const emit = (l: string): void => {
    if (lines.length < max) lines.push(l);
    else dropped++;
  };
  const walk = (tablePa: number, level: Level, base: bigint, depth: number): void => {
    const span = 1n << BigInt(levelShift[level]);
    for (let i = 0; i < 512; i++) {
      const lo = base + BigInt(i) * span;
      const hi = lo + span;
      if (hi <= s || lo >= e) continue;
      const entry = pt.readEntry(tablePa + i * 8);
      if (entry === 0n) continue;
      const pad = '  '.repeat(depth);
      const name = `${levelTableNames[level]}[${i.toString(16).padStart(3, '0')}] ${hex(entry, 16)}`;
      const flags = entryFlagNames(entry, level).join(' ');
      const present = (entry & _PAGE_PRESENT) !== 0n;
      const isLeaf = level === 1 || ((level === 2 || level === 3) && (entry & _PAGE_PSE) !== 0n);
      const va = hex(canonicalize(lo, pt.la57));
      if (!present) {
        if (showNp) emit(`${pad}${name} va ${va} not present [${flags}]`);
        continue;
      }
      if (isLeaf) {
        const size = level === 1 ? '4K' : level === 2 ? '2M' : '1G';
        const pa = (BigInt(ptePfn(entry)) * BigInt(PAGE_SIZE)) & ~(span - 1n);
        emit(`${pad}${name} va ${va} -> pa ${hex(pa)} ${size} [${flags}]`);
      } else {
        const next = entryTablePa(entry);
        const nextPfn = Math.floor(next / PAGE_SIZE);
        const usable = next < pt.mem.size && pt.mem.state[nextPfn] !== FrameState.free;
        emit(
          `${pad}${name} -> table ${hex(next)} [${flags}]${usable ? '' : ' (points outside allocated memory)'}`,
        );
        if (usable) walk(next, (level - 1) as Level, lo, depth + 1);
      }
    }
  };
  walk(pt.pgd, pt.levels, 0n, 0);
  if (dropped > 0) lines.push(`... ${dropped} more lines`);
  return lines.join('\n');
}
