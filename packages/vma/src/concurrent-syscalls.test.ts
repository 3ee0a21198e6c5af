import { Rcu } from '@spf/locks';
import { exploreInTest, type Machine } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, it } from 'vitest';
import { sysMadvise } from './madvise.js';
import { checkMmInvariants } from './mm-invariants.js';
import { MmStruct } from './mm-struct.js';
import { sysMmap } from './mmap.js';
import { sysMprotect } from './mprotect.js';
import { sysMremap } from './mremap.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { speculativeVmaLookup } from './spf-lookup.js';
import { testFault } from './test-support/system.js';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

describe('syscalls and faults from several CPUs', () => {
  it('serialize on the mmap lock and leave a consistent mm', () => {
    for (const opts of [
      { policy: 'random', runs: 150, seed: 11 },
      { policy: 'pct', runs: 150, seed: 12, depth: 3 },
    ] as const) {
      exploreInTest(
        {
          cpus: 3,
          setup(m: Machine) {
            const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: false });
            const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ mem }) });
            m.spawn(0, 'mapper', function* () {
              yield* sysMmap(mm, { addr: A, len: 6 * P, prot: RW, flags: FLAGS });
              yield* sysMprotect(mm, A + P, 2 * P, PROT_READ);
              yield* sysMremap(mm, A + 4 * P, 2 * P, 8 * P, MREMAP_MAYMOVE);
            });
            m.spawn(1, 'unmapper', function* () {
              yield* sysMunmap(mm, A + 2 * P, P);
              yield* sysMadvise(mm, A, 6 * P, MADV_DONTNEED);
              yield* sysMmap(mm, { addr: A + 2 * P, len: P, prot: RW, flags: FLAGS });
            });
            m.spawn(2, 'faulter', function* () {
              for (const page of [0, 3, 5, 0]) {
                yield* mm.mmapReadLock();
                yield* testFault(mm, A + page * P);
                yield* mm.mmapReadUnlock();
                yield* mm.rcu.readLock();
                yield* speculativeVmaLookup(mm, A + page * P);
                yield* mm.rcu.readUnlock();
              }
            });
            return () => checkMmInvariants([mm]);
          },
        },
        opts,
        'serialize on the mmap lock and leave a consistent mm',
      );
    }
  });
});
