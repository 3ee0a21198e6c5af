import { CPU_FEATURE_NAMES } from './cpu-features.js';
import { type Level, levelEntryNames, PAGE_SIZE } from './entry-bits.js';
import { entryFlagNames, formatErrorCode } from './entry-format.js';
import type { PhysicalMemory } from './physical-memory.js';
import { reservedBitsSet } from './paging-rules.js';
import { referenceWalk } from './reference-walk.js';
import { PF_RSVD, type PagingRegs, type WalkAccess, type WalkResult } from './walker.js';

/** What {@link explainWalk} returns: the result and one line per step. */
export type WalkExplanation = { readonly result: WalkResult; readonly lines: readonly string[] };

const hex = (v: bigint | number, pad = 0): string => `0x${v.toString(16).padStart(pad, '0')}`;

/**
 * A dry run of `referenceWalk` that reports every entry it reads and the outcome, without setting A or D:
 *
 * ```
 * read va 0x7f1234567000 (user read, 4-level)
 *   PML4E[0fe] @ pa 0x2ff0 = 0x0000000000003067 [P RW US A D]
 *   ...
 *   PTE[167] @ pa 0x5b38 = 0x0000000000400005 [P US]
 * -> pa 0x400000 (4K page)
 * ```
 *
 * The first line names the CPU features the CPU lacks (`regs.features`), and a reserved-bit fault ends with
 * the reserved bits that were set in the entry that stopped the walk.
 *
 * For the command line and the course site (why did this access fault?).
 */
export function explainWalk(
  mem: PhysicalMemory,
  regs: PagingRegs,
  va: bigint,
  access: WalkAccess,
): WalkExplanation {
  const lines: string[] = [];
  const mode = access.user ? 'user' : access.implicit ? 'implicit supervisor' : 'supervisor';
  const missing = CPU_FEATURE_NAMES.filter((f) => regs.features?.[f] === false);
  const cpu = missing.length > 0 ? `; CPU without ${missing.join(', ')}` : '';
  lines.push(`${access.kind} va ${hex(va)} (${mode} ${access.kind}, ${regs.la57 ? 5 : 4}-level${cpu})`);
  let level = (regs.la57 ? 5 : 4) as Level;
  let lastEntry = 0n;
  let lastLevel = level;
  const result = referenceWalk(
    {
      readEntry(pa: bigint): bigint {
        const e = mem.walkRead(Number(pa));
        lastEntry = e;
        lastLevel = level;
        const index = Number((pa % BigInt(PAGE_SIZE)) / 8n);
        lines.push(
          `  ${levelEntryNames[level]}[${index.toString(16).padStart(3, '0')}] @ pa ${hex(pa)} = ${hex(e, 16)} [${entryFlagNames(e, level).join(' ')}]`,
        );
        if (level > 1) level = (level - 1) as Level;
        return e;
      },
      setBits(): void {},
    },
    regs,
    va,
    access,
  );
  if (result.ok) {
    const size = result.pageSize === PAGE_SIZE ? '4K' : result.pageSize === 2097152 ? '2M' : '1G';
    lines.push(`-> pa ${hex(result.pa)} (${size} page)`);
  } else if (result.fault === 'GP') {
    lines.push('-> #GP: the address is not canonical');
  } else {
    lines.push(
      `-> #PF error code ${hex(result.errorCode)} (${formatErrorCode(result.errorCode)}), CR2 ${hex(result.cr2)}`,
    );
    if ((result.errorCode & PF_RSVD) !== 0) {
      const bits = reservedBitsSet(lastEntry, lastLevel, regs);
      const why =
        lastLevel === 3 && (bits & 0x80n) !== 0n && regs.features?.pdpe1gb === false
          ? ' (PS: this CPU has no 1 GiB pages)'
          : bits >> 63n === 1n
            ? ' (XD while EFER.NXE = 0)'
            : '';
      lines.push(`   reserved bits set in the ${levelEntryNames[lastLevel]}: ${hex(bits)}${why}`);
    }
  }
  return { result, lines };
}
