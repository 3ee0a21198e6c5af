import type { MmStruct } from './mm-struct.js';
import { PAGE_SIZE, VM_EXEC, VM_MAYSHARE, VM_READ, VM_WRITE } from './vm-flags.js';
import type { VmArea } from './vm-area.js';

/** Width the name column is padded to (seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) on 64-bit). */
const NAME_COLUMN = 25 + 8 * 6 - 1;

function hexPad(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Models `get_vma_name()` in fs/proc/task_mmu.c: the name column of a VMA, or null. */
export function vmaName(vma: VmArea): string | null {
  const opsName = vma.vmOps?.name?.(vma);
  if (opsName) return opsName;
  if (vma.vmFile) return vma.vmFile.path;
  const mm = vma.vmMm;
  if (vma.vmStart < mm.brk && vma.vmEnd > mm.startBrk) return '[heap]';
  if (mm.startStack !== null && vma.vmStart <= mm.startStack && vma.vmEnd >= mm.startStack) return '[stack]';
  return null;
}

/**
 * Models `show_map_vma()` in fs/proc/task_mmu.c: one /proc/PID/maps line (without the newline):
 * `start-end perms offset major:minor inode`, then the name padded to column 73.
 */
export function showMapVma(vma: VmArea): string {
  const f = vma.vmFlags;
  const file = vma.vmFile;
  const pgoff = file ? vma.vmPgoff * PAGE_SIZE : 0;
  const perms =
    (f & VM_READ ? 'r' : '-') +
    (f & VM_WRITE ? 'w' : '-') +
    (f & VM_EXEC ? 'x' : '-') +
    (f & VM_MAYSHARE ? 's' : 'p');
  let line =
    `${hexPad(vma.vmStart, 8)}-${hexPad(vma.vmEnd, 8)} ${perms} ${hexPad(pgoff, 8)} ` +
    `${hexPad(file?.devMajor ?? 0, 2)}:${hexPad(file?.devMinor ?? 0, 2)} ${file?.ino ?? 0} `;
  const name = vmaName(vma);
  if (name !== null) {
    if (line.length < NAME_COLUMN) line = line.padEnd(NAME_COLUMN, ' ');
    line += ` ${name}`;
  }
  return line;
}

/** The fields of one /proc/PID/maps line, for callers that format them their own way (the replay format). */
export type MapsEntry = {
  readonly start: number;
  readonly end: number;
  /** `rw-p`. */
  readonly perms: string;
  /** The offset column in bytes: the file offset, 0 for anonymous memory. */
  readonly offset: number;
  readonly devMajor: number;
  readonly devMinor: number;
  readonly ino: number;
  /** The name column, or null. */
  readonly name: string | null;
};

/** The /proc/PID/maps fields of each VMA overlapping [start, end). */
export function mapsEntries(mm: MmStruct, start = 0, end = Number.POSITIVE_INFINITY): MapsEntry[] {
  const out: MapsEntry[] = [];
  for (const v of mm.vmasIn(start, end)) {
    const f = v.vmFile;
    out.push({
      start: v.vmStart,
      end: v.vmEnd,
      perms: v.perms(),
      offset: f ? v.vmPgoff * PAGE_SIZE : 0,
      devMajor: f?.devMajor ?? 0,
      devMinor: f?.devMinor ?? 0,
      ino: f?.ino ?? 0,
      name: vmaName(v),
    });
  }
  return out;
}

/**
 * The /proc/self/maps text of the VMAs overlapping [start, end) (the whole address space by default), one
 * line per VMA, each ending in a newline — the function the conformance suite prints.
 */
export function procMaps(mm: MmStruct, start = 0, end = Number.POSITIVE_INFINITY): string {
  let out = '';
  for (const v of mm.vmasIn(start, end)) out += `${showMapVma(v)}\n`;
  return out;
}

/** One VMA's smaps-like summary: its maps line and resident set size. */
export type SmapsEntry = {
  readonly line: string;
  readonly sizeKb: number;
  readonly rssKb: number;
  /** Resident pages by RSS counter type (MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES). */
  readonly rssByType: readonly number[];
};

/** Models the Size/Rss part of `show_smap()` in fs/proc/task_mmu.c for each VMA overlapping [start, end). */
export function smaps(mm: MmStruct, start = 0, end = Number.POSITIVE_INFINITY): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  for (const v of mm.vmasIn(start, end)) {
    const byType = [0, 0, 0, 0];
    let n = 0;
    for (const p of mm.pageTables.presentPtes(v.vmStart, v.vmEnd)) {
      n++;
      byType[p.rssType]++;
    }
    out.push({ line: showMapVma(v), sizeKb: (v.vmEnd - v.vmStart) / 1024, rssKb: n * 4, rssByType: byType });
  }
  return out;
}
