import { _PAGE_PROTNONE, type Level, levelEntryNames } from './entry-bits.js';
import { ptePfn } from './pte.js';
import { isSwapPte, pteToSwpEntry } from './swap-entry.js';

/**
 * Printers that name an entry's flags, e.g. `P RW US A D XD pkey=3`. Which name bit 7 and bit 12 get depends
 * on the level: PS in a PDE/PDPTE, PAT in a PTE; PAT (bit 12) only in a 2 MiB or 1 GiB leaf.
 */

const LOW_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0, 'P'],
  [1, 'RW'],
  [2, 'US'],
  [3, 'PWT'],
  [4, 'PCD'],
  [5, 'A'],
  [6, 'D'],
];

/** Names of the flags of `entry` at `level` (1 = PTE ... 5 = PML5E); Linux's software bits use Linux's names. */
export function entryFlagNames(entry: bigint, level: Level = 1): string[] {
  const out: string[] = [];
  const has = (b: number): boolean => ((entry >> BigInt(b)) & 1n) === 1n;
  const present = has(0);
  if (!present && entry !== 0n && isSwapPte(entry) && (entry & _PAGE_PROTNONE) === 0n) {
    const e = pteToSwpEntry(entry);
    return [`swap(type=${e.type}, offset=0x${e.offset.toString(16)})`];
  }
  for (const [b, n] of LOW_NAMES) if (has(b)) out.push(n);
  if (has(7)) out.push(level === 1 ? 'PAT' : 'PS');
  if (has(8)) out.push(present ? 'G' : 'PROTNONE');
  if (has(9)) out.push('SPECIAL');
  if (has(10)) out.push('UFFD_WP');
  if (has(11)) out.push('SOFT_DIRTY');
  if (has(12) && (level === 2 || level === 3) && has(7)) out.push('PAT');
  if (has(57)) out.push('SOFTW4');
  if (has(58)) out.push('SAVED_DIRTY');
  const pkey = Number((entry >> 59n) & 0xfn);
  if (pkey !== 0) out.push(`pkey=${pkey}`);
  if (has(63)) out.push('XD');
  return out;
}

/** One-line description of an entry: kind, raw value, frame and flags. */
export function formatEntry(entry: bigint, level: Level = 1): string {
  const raw = `0x${entry.toString(16).padStart(16, '0')}`;
  if (entry === 0n) return `${levelEntryNames[level]} ${raw} (none)`;
  const names = entryFlagNames(entry, level);
  if (names.length === 1 && names[0].startsWith('swap('))
    return `${levelEntryNames[level]} ${raw} ${names[0]}`;
  return `${levelEntryNames[level]} ${raw} pfn=0x${ptePfn(entry).toString(16)} [${names.join(' ')}]`;
}

/** A #PF error code as text, e.g. `P|W|U` or `!P|R|S|I`. */
export function formatErrorCode(code: number): string {
  const parts = [code & 1 ? 'P' : '!P', code & 2 ? 'W' : 'R', code & 4 ? 'U' : 'S'];
  if (code & 8) parts.push('RSVD');
  if (code & 16) parts.push('I');
  if (code & 32) parts.push('PK');
  return parts.join('|');
}
