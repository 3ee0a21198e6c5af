import { Rcu } from '@spf/locks';
import {
  ExplorationFailure,
  exploreInTest,
  type Kernel,
  kassert,
  type Machine,
  MemoryLine,
  read,
  type Scenario,
  write,
} from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { sysMprotect } from './mprotect.js';
import { sysMremap } from './mremap.js';
import { sysMunmap } from './munmap.js';
import { speculativeVmaLookup, speculativeVmaValidate } from './spf-lookup.js';
import { mmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
  VM_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;

type Writer = (mm: MmStruct) => Kernel<unknown>;

/**
 * One CPU changes the mapping at A..A+3P while the other runs speculative lookups of A+P under RCU.
 * Every lookup that validates must still describe the VMA exactly at the moment of validation.
 */
function scenario(name: string, writer: Writer, opts: { rcu?: boolean } = {}): Scenario {
  return {
    name,
    cpus: 2,
    setup(m: Machine) {
      const mm = new MmStruct({ rcu: new Rcu(m) });
      const r = mmapSync(mm, {
        addr: A,
        len: 3 * P,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
      });
      kassert(r.ok, 'setup mmap');
      const useRcu = opts.rcu ?? true;
      let validated = 0;
      const walkLines = [1, 2, 3, 4].map((i) => new MemoryLine(`pgtable level ${i}`));
      m.spawn(0, 'writer', () => writer(mm));
      m.spawn(1, 'spf-reader', function* () {
        for (let i = 0; i < 3; i++) {
          if (useRcu) yield* mm.rcu.readLock();
          const snap = yield* speculativeVmaLookup(mm, A + P);
          if (snap !== null) {
            // The work a fault does between the lookup and the PTE lock (a page-table walk).
            for (const l of walkLines) yield* read(l, 'spf: page-table walk');
            yield* read(snap.vma.line, 'spf: fault work');
            snap.vma.checkLive('speculative fault');
            if (yield* speculativeVmaValidate(snap)) {
              const v = snap.vma;
              kassert(
                !v.detached &&
                  v.vmStart === snap.vmStart &&
                  v.vmEnd === snap.vmEnd &&
                  v.vmFlags === snap.vmFlags,
                () =>
                  `validated a stale snapshot of ${v}: saw [${snap.vmStart.toString(16)}, ${snap.vmEnd.toString(16)}) flags ${snap.vmFlags.toString(16)}`,
              );
              validated++;
            }
          }
          if (useRcu) yield* mm.rcu.readUnlock();
        }
      });
      return () => {
        kassert(validated >= 0, 'unreachable');
      };
    },
  };
}

const mprotectMiddle: Writer = (mm) => sysMprotect(mm, A + P, P, PROT_READ);
const munmapAll: Writer = function* (mm) {
  yield* sysMunmap(mm, A, 3 * P);
  yield* sysMunmap(mm, A + 10 * P, P);
};
const mremapMove: Writer = (mm) => sysMremap(mm, A, 3 * P, 6 * P, MREMAP_MAYMOVE);

describe('a lock-free reader (RCU + vm_sequence) racing with writers', () => {
  for (const [label, writer] of [
    ['mprotect', mprotectMiddle],
    ['munmap', munmapAll],
    ['mremap', mremapMove],
  ] as const) {
    it(`never touches freed memory and always detects the change: ${label}`, () => {
      const name = `never touches freed memory and always detects the change: ${label}`;
      exploreInTest(scenario(label, writer), { policy: 'random', runs: 300, seed: 5 }, name);
      exploreInTest(scenario(label, writer), { policy: 'pct', runs: 300, seed: 6, depth: 3 }, name);
    });
  }
});

describe('deliberately broken variants are caught by the explorer', () => {
  it('a writer that changes vm_flags without vm_write_begin/vm_write_end', () => {
    const broken: Writer = function* (mm) {
      yield* mm.mmapWriteLock();
      const vma = mm.vmaLookup(A + P);
      if (vma) {
        yield* write(vma.line, 'vm_flags_clear without vm_write_begin');
        vma.vmFlags &= ~VM_WRITE;
      }
      yield* mm.mmapWriteUnlock();
    };
    expect(() =>
      exploreInTest(
        scenario('broken-writer', broken),
        { policy: 'random', runs: 500, seed: 1 },
        'a writer that changes vm_flags without vm_write_begin/vm_write_end',
      ),
    ).toThrow(ExplorationFailure);
    try {
      exploreInTest(
        scenario('broken-writer', broken),
        { policy: 'random', runs: 500, seed: 1 },
        'a writer that changes vm_flags without vm_write_begin/vm_write_end',
      );
    } catch (e) {
      expect(String(e)).toMatch(/validated a stale snapshot/);
      expect(String(e)).toMatch(/SPF_REPLAY=/);
    }
  });

  it('a reader that skips rcu_read_lock reads a freed VMA or tree node', () => {
    let msg = '';
    try {
      exploreInTest(
        scenario('no-rcu-reader', munmapAll, { rcu: false }),
        { policy: 'pct', runs: 2000, seed: 3, depth: 2 },
        'a reader that skips rcu_read_lock reads a freed VMA or tree node',
      );
    } catch (e) {
      msg = String(e);
    }
    expect(msg).toMatch(/use-after-free/i);
    expect(msg).toMatch(/SPF_REPLAY=/);
  });
});
