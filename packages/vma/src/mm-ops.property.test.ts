import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SysResult } from './errno.js';
import { mmInvariantProblems, pageStates } from './mm-invariants.js';
import type { MmStruct } from './mm-struct.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { procMaps } from './proc-maps.js';
import { forkSync, madviseSync, mmapSync, mprotectSync, mremapSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const PAGES = 24;

type Op =
  | { op: 'mmap'; off: number; n: number; prot: number; shared: boolean; fixed: boolean }
  | { op: 'munmap'; off: number; n: number }
  | { op: 'mprotect'; off: number; n: number; prot: number }
  | { op: 'mremap'; off: number; oldN: number; newN: number; flags: number; to: number }
  | { op: 'madvise'; off: number; n: number }
  | { op: 'touch'; page: number }
  | { op: 'fork' };

const off = fc.integer({ min: -1, max: PAGES });
const n = fc.integer({ min: 0, max: 6 });
const prot = fc.integer({ min: 0, max: 7 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('mmap' as const),
      off,
      n,
      prot,
      shared: fc.boolean(),
      fixed: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('munmap' as const), off, n }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('mprotect' as const), off, n, prot }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('mremap' as const),
      off,
      oldN: n,
      newN: n,
      flags: fc.constantFrom(0, MREMAP_MAYMOVE, MREMAP_MAYMOVE | MREMAP_FIXED),
      to: off,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('madvise' as const), off, n }) },
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('touch' as const), page: fc.integer({ min: 0, max: PAGES - 1 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'fork' as const }) },
);

/** Per-page protection model of the arena: what Linux guarantees for each page after each op. */
type Model = (string | null)[];

function perms(p: number, shared: boolean): string {
  return (p & 1 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 4 ? 'x' : '-') + (shared ? 's' : 'p');
}
function modelFromMm(mm: MmStruct): Model {
  const m: Model = [];
  for (let i = 0; i < PAGES; i++) m.push(mm.vmaLookup(A + i * P)?.perms() ?? null);
  return m;
}
function snapshot(mm: MmStruct): string {
  const ptes = [...mm.pageTables.presentPtes(0, 2 ** 47)].map(
    (p) => `${p.addr.toString(16)}:${p.pte.toString(16)}`,
  );
  return `${procMaps(mm)}|${ptes.join(',')}|${mm.rss.join(',')}|${mm.mapCount}`;
}
const addr = (o: number) => (o < 0 ? 2 ** 47 + 5 : A + o * P);

const pages = pageStates;

describe('random sequences of mapping syscalls', () => {
  it('keep the mm invariants after every op, match the per-page model, and fail without changing anything', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        const { mm, mem } = makeSystem({ maxMapCount: 8 });
        const children: MmStruct[] = [];
        let model: Model = new Array(PAGES).fill(null);
        for (const o of ops) {
          const before = snapshot(mm);
          let r: SysResult<number> | null = null;
          let atomic = true;
          const expected = model.slice();
          switch (o.op) {
            case 'mmap': {
              const flags =
                (o.shared ? MAP_SHARED : MAP_PRIVATE) |
                MAP_ANONYMOUS |
                (o.fixed ? MAP_FIXED : MAP_FIXED_NOREPLACE);
              r = mmapSync(mm, { addr: addr(o.off), len: o.n * P, prot: o.prot, flags });
              if (r.ok)
                for (let i = o.off; i < o.off + o.n && i < PAGES; i++) expected[i] = perms(o.prot, o.shared);
              break;
            }
            case 'munmap':
              r = munmapSync(mm, addr(o.off), o.n * P);
              if (r.ok) for (let i = o.off; i < o.off + o.n && i < PAGES; i++) expected[i] = null;
              break;
            case 'mprotect': {
              r = mprotectSync(mm, addr(o.off), o.n * P, o.prot);
              atomic = false;
              // Linux applies the new protection page by page until the first hole.
              if (o.off >= 0 && o.n > 0 && model[o.off] !== null) {
                for (let i = o.off; i < o.off + o.n && i < PAGES && model[i] !== null; i++) {
                  expected[i] = perms(o.prot, (model[i] as string)[3] === 's');
                }
              }
              break;
            }
            case 'mremap':
              r = mremapSync(mm, addr(o.off), o.oldN * P, o.newN * P, o.flags, addr(o.to));
              // MREMAP_FIXED unmaps the destination before it can fail, as in Linux.
              atomic = !(o.flags & MREMAP_FIXED);
              break;
            case 'madvise':
              r = madviseSync(mm, addr(o.off), o.n * P, MADV_DONTNEED);
              atomic = false;
              break;
            case 'touch': {
              const v = mm.vmaLookup(A + o.page * P);
              if (v && !v.perms().endsWith('s') && v.perms().slice(0, 2) !== '--') touch(mm, A + o.page * P);
              break;
            }
            case 'fork':
              if (children.length < 2) children.push(forkSync(mm, PagetableOps.factory({ mem })));
              break;
          }
          const problems = mmInvariantProblems([mm, ...children], pages);
          expect(problems, `after ${JSON.stringify(o)}`).toEqual([]);
          if (r !== null && !r.ok && atomic)
            expect(snapshot(mm), `failed ${JSON.stringify(o)} changed the mm`).toBe(before);
          if (o.op === 'mremap' && (r?.ok || !atomic)) model = modelFromMm(mm);
          else if (r !== null && (r.ok || !atomic)) model = expected;
          expect(modelFromMm(mm), `after ${JSON.stringify(o)} -> ${JSON.stringify(r)}`).toEqual(model);
        }
        for (const c of children) munmapSync(c, 0, 2 ** 47 - P);
        munmapSync(mm, 0, 2 ** 47 - P);
        expect(mmInvariantProblems([mm, ...children], pages)).toEqual([]);
        expect(mm.rss.every((x) => x === 0)).toBe(true);
      }),
      {
        numRuns: Number(process.env.SPF_PROPERTY_RUNS ?? 150),
        seed: Number(process.env.SPF_PROPERTY_SEED ?? 20251125),
      },
    );
  });
});
