import { entryFlagNames, type Level, referenceWalk } from '@spf/pagetable';
import { TestFailure } from '../lab-errors.js';
import { type PageTableBuilder, TestMemory } from './page-table-builder.js';
import type { PagingRegs, WalkAccess, Walker, WalkResult } from './walk-types.js';

const hex = (v: bigint) => `0x${v.toString(16)}`;
const PF_NAMES = ['P', 'W', 'U', 'RSVD', 'I', 'PK'];

/** "P|W|U"-style names of a #PF error code's bits. */
export function errorCodeNames(code: number): string {
  const names = PF_NAMES.filter((_n, i) => (code >> i) & 1);
  return `0x${code.toString(16)} (${names.length ? names.join('|') : 'not present, read, supervisor'})`;
}

/** A walk result as one readable line, for expected/actual in failure details. */
export function describeWalkResult(r: unknown): string {
  if (r === null || typeof r !== 'object') return `not a WalkResult: ${String(r)}`;
  const w = r as Partial<Record<string, unknown>>;
  if (w.ok === true) {
    const pa = typeof w.pa === 'bigint' ? hex(w.pa) : `${String(w.pa)} (pa must be a bigint)`;
    return `ok: pa=${pa}, pageSize=${String(w.pageSize)}`;
  }
  if (w.ok === false && w.fault === 'GP') return '#GP';
  if (w.ok === false && w.fault === 'PF') {
    const cr2 = typeof w.cr2 === 'bigint' ? hex(w.cr2) : `${String(w.cr2)} (cr2 must be a bigint)`;
    return `#PF: errorCode=${typeof w.errorCode === 'number' ? errorCodeNames(w.errorCode) : String(w.errorCode)}, cr2=${cr2}`;
  }
  return `not a WalkResult: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? hex(v) : v))}`;
}

/** How an access reads in a message: "user write", "supervisor fetch (implicit)". */
export function describeAccess(a: WalkAccess): string {
  return `${a.user ? 'user' : 'supervisor'} ${a.kind}${a.implicit ? ' (implicit)' : ''}`;
}

export const userRead: WalkAccess = { kind: 'read', user: true };
export const userWrite: WalkAccess = { kind: 'write', user: true };
export const userFetch: WalkAccess = { kind: 'fetch', user: true };
export const kernRead: WalkAccess = { kind: 'read', user: false };
export const kernWrite: WalkAccess = { kind: 'write', user: false };
export const kernFetch: WalkAccess = { kind: 'fetch', user: false };

/** Expected outcomes. */
export const ok = (pa: bigint, pageSize: 4096 | 2097152 | 1073741824): WalkResult => ({
  ok: true,
  pa,
  pageSize,
});
export const pf = (errorCode: number, cr2: bigint): WalkResult => ({
  ok: false,
  fault: 'PF',
  errorCode,
  cr2,
});
export const gp: WalkResult = { ok: false, fault: 'GP' };

const LEVEL_NAMES = ['PML4E', 'PDPTE', 'PDE', 'PTE'];

/**
 * How @spf/pagetable's `referenceWalk` handles the access, one line per entry it reads, on a copy of the
 * tables (so nothing is marked accessed): shown under a failing case to help find the difference.
 */
export function explainReference(
  b: PageTableBuilder,
  regs: PagingRegs,
  va: bigint,
  access: WalkAccess,
): string[] {
  const copy = new TestMemory();
  for (const [k, v] of b.mem.entries) copy.entries.set(k, v);
  const lines: string[] = ['How the reference walk handles this access:'];
  let n = 0;
  const result = referenceWalk(
    {
      readEntry(pa) {
        const e = copy.readEntry(pa);
        const name = LEVEL_NAMES[n] ?? `level ${n}`;
        const level = (4 - n) as Level;
        const idx = (pa & 0xfffn) / 8n;
        const flags = entryFlagNames(e, level).join(' ');
        lines.push(`  ${name}[${idx.toString(16).padStart(3, '0')}] @ pa ${hex(pa)} = ${hex(e)} [${flags}]`);
        n++;
        return e;
      },
      setBits: (pa, bits) => copy.setBits(pa, bits),
    },
    regs,
    va,
    access,
  );
  lines.push(`  -> ${describeWalkResult(result)}`);
  return lines;
}

/**
 * Walks `va` with the student's walker and fails the test, with expected and actual, unless the result is
 * exactly `expected`. `why` says what the case checks.
 */
export function expectWalk(
  walk: Walker,
  b: PageTableBuilder,
  va: bigint,
  access: WalkAccess,
  expected: WalkResult,
  why: string,
  regs: Partial<PagingRegs> = {},
): void {
  const actual = walk(b.mem, b.regs(regs), va, access);
  if (describeWalkResult(actual) !== describeWalkResult(expected)) {
    const regNote = Object.keys(regs).length
      ? ` with ${Object.entries(regs)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(', ')}`
      : '';
    throw new TestFailure(`${describeAccess(access)} of ${hex(va)}${regNote}: ${why}`, {
      expected: describeWalkResult(expected),
      actual: describeWalkResult(actual),
      notes: explainReference(b, b.regs(regs), va, access),
    });
  }
}

/** Fails unless `cond`, with expected/actual strings. */
export function expectThat(cond: boolean, message: string, expected: string, actual: string): void {
  if (!cond) throw new TestFailure(message, { expected, actual });
}

export { hex };
