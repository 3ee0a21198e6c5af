import { type LespinasseCheck, lespinasseSpf } from '@spf/fault-spec';
import { describeExploreFailure, explore, type Scenario } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, it } from 'vitest';
import { boot } from '../system.js';

const A = 0x5000_0000;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function munmapScenario(off: LespinasseCheck | null): Scenario {
  return {
    cpus: 2,
    setup(m) {
      const sys = boot({ machine: m, memory: 1 << 24, faultHandler: lespinasseSpf({ checks: off ? { [off]: false } : {} }) });
      sys.spawnProcess('p', function* (u) {
        yield* u.mmap(A, 4 * 4096, RW, ANON);
        yield* u.store8(A, 1);
        yield* u.spawnThread(function* (w) {
          for (let p = 1; p < 4; p++) yield* w.store8(A + p * 4096, p);
        }, 1);
        yield* u.munmap(A, 4 * 4096);
      });
    },
  };
}

describe('probe', () => {
  it('null pct', () => {
    const t = Date.now();
    const res = explore(munmapScenario(null), { policy: 'pct', runs: 300, seed: 1, depth: 3 });
    console.log(describeExploreFailure(res), Date.now() - t, 'ms');
  }, 600000);
});
