import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unmappedAreaTopdown, unmappedAreaTopdownLinear } from './get-unmapped-area.js';
import { MmStruct } from './mm-struct.js';
import { mmapSync, munmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const BASE = 0x10000;

describe('the top-down free-area search', () => {
  it('finds the same address through the tree gap summaries as by walking every VMA', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            page: fc.nat(600),
            n: fc.integer({ min: 1, max: 5 }),
            stack: fc.boolean(),
            prot: fc.nat(3),
          }),
          { maxLength: 120 },
        ),
        fc.array(fc.nat(400), { maxLength: 40 }),
        fc.array(fc.record({ len: fc.integer({ min: 1, max: 40 }), lo: fc.nat(600), span: fc.nat(700) }), {
          minLength: 1,
          maxLength: 30,
        }),
        (maps, unmaps, queries) => {
          const mm = new MmStruct({ stackGuardGap: 3 * P });
          for (const m of maps) {
            mmapSync(mm, {
              addr: BASE + m.page * P,
              len: m.n * P,
              prot: m.prot === 0 ? PROT_READ : PROT_READ | PROT_WRITE,
              flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | (m.stack ? MAP_GROWSDOWN : 0),
            });
          }
          for (const u of unmaps) munmapSync(mm, BASE + u * P, 2 * P);
          for (const q of queries) {
            const lo = BASE + q.lo * P;
            const hi = lo + q.span * P;
            const fast = unmappedAreaTopdown(mm, q.len * P, lo, hi);
            const slow = unmappedAreaTopdownLinear(mm, q.len * P, lo, hi);
            expect(fast, JSON.stringify(q)).toBe(slow);
          }
          expect(mm.tree.validate()).toEqual([]);
        },
      ),
      {
        numRuns: Number(process.env.SPF_PROPERTY_RUNS ?? 200),
        seed: Number(process.env.SPF_PROPERTY_SEED ?? 20251125),
      },
    );
  });
});
