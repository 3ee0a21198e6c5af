import { doUserAddrFault, makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { Rcu } from '@spf/locks';
import { defaultCostModel, exploreInTest, type Kernel, type Machine, runSync } from '@spf/machine';
import { Mmu, PF_USER, PhysicalMemory } from '@spf/pagetable';
import { MAP_FIXED_NOREPLACE, MAP_SHARED, MmStruct, mmapSync, PagetableOps, PROT_READ } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { fileFsync, fileTruncate, fileWrite } from './file-ops.js';
import { filemapVmOps } from './filemap.js';
import { SuperBlock } from './super-block.js';
import { must } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

/**
 * A read fault on page 3 of a cached 4-page file races ftruncate() to 2 pages on another CPU. Whatever the
 * interleaving, page 3 must not stay mapped (truncate unmaps what was mapped before it; a fault that looked
 * the page up before the truncate re-checks `folio->mapping` and the size under the page lock), and the
 * fault ends handled or with SIGBUS. (A fault that looked page 3 up after the truncate may leave a zeroed page
 * beyond EOF in the cache, as Linux may; it is never mapped.) Lockless lookups racing the removal see a freed
 * page as refcount 0 (`folio_try_get()` fails), never use it.
 */
function scenario() {
  return {
    name: 'read fault vs truncate',
    cpus: 2,
    setup(m: Machine) {
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: true });
      const env = makeFaultEnv({ mem, cost: defaultCostModel, faultAroundBytes: 4096 });
      const rcu = new Rcu(m);
      const mm = new MmStruct({
        pageTables: PagetableOps.factory({ env, mmu: new Mmu(mem, { cpus: 2 }) }),
        rcu,
      });
      const sb = new SuperBlock({ env, rcu });
      const f = must(sb.open('t', { read: true, write: true, create: true }));
      must(runSync(fileWrite(f, 0, new Uint8Array(4 * P).fill(3))));
      must(runSync(fileFsync(f)));
      must(
        mmapSync(mm, {
          addr: A,
          len: 4 * P,
          prot: PROT_READ,
          flags: MAP_SHARED | MAP_FIXED_NOREPLACE,
          file: { file: f, ops: filemapVmOps, readable: true, writable: true },
        }),
      );
      let outcome = '';
      m.spawn(0, 'faulter', function* (): Kernel<void> {
        const out = yield* doUserAddrFault(env, {
          mm,
          address: A + 3 * P,
          errorCode: PF_USER,
          task: new TaskFaultCounters(),
        });
        outcome = out.kind;
      });
      m.spawn(1, 'truncater', function* (): Kernel<void> {
        must(yield* fileTruncate(f, 2 * P));
      });
      return () => {
        const leaf = mm.pgd.lookup(A + 3 * P).at(-1);
        if (leaf !== undefined && leaf.level === 1 && (leaf.entry & 1n) === 1n) {
          throw new Error(`page 3 is still mapped after truncate to 2 pages (fault: ${outcome})`);
        }
        if (outcome !== 'handled' && outcome !== 'sigbus') throw new Error(`fault ended with ${outcome}`);
      };
    },
  };
}

describe('truncate racing a fault (explored)', () => {
  it('a page cut by truncate never stays mapped, whatever the interleaving', () => {
    expect(exploreInTest(scenario(), { policy: 'pct', runs: 400, depth: 3 }).failure).toBeNull();
    expect(exploreInTest(scenario(), { policy: 'random', runs: 200 }).failure).toBeNull();
  });
});
