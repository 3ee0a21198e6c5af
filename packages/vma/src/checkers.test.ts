import { Rcu } from '@spf/locks';
import { exploreInTest, kassert, type Machine, read, runSync, type Scenario, write } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { checkMmInvariants } from './mm-invariants.js';
import { getVmaNotZero, MmStruct, putVma } from './mm-struct.js';
import { procMaps, showMapVma, smaps } from './proc-maps.js';
import { brkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_SOFTDIRTY,
} from './vm-flags.js';
import { vmaEndRead, vmaStartRead, vmaStartWrite } from './vma-lock.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

describe('/proc/self/maps', () => {
  it('prints show_map_vma lines: hex addresses, perms, offset, device, inode, padded names', () => {
    const mm = new MmStruct({ startStack: 0x7ffffffde100 });
    mmapSync(mm, { addr: 0x7ffffffdd000, len: 0x22000, prot: RW, flags: FLAGS });
    mmapSync(mm, { addr: 0x10000, len: P, prot: PROT_READ | PROT_EXEC, flags: FLAGS });
    brkSync(mm, mm.startBrk + P);
    expect(procMaps(mm)).toBe(
      [
        '00010000-00011000 r-xp 00000000 00:00 0 ',
        '555555559000-55555555a000 rw-p 00000000 00:00 0                          [heap]',
        '7ffffffdd000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]',
        '',
      ].join('\n'),
    );
    // Only the VMAs overlapping a range.
    expect(procMaps(mm, 0x10000, 0x11000)).toBe('00010000-00011000 r-xp 00000000 00:00 0 \n');
    const v = mm.findVma(0);
    if (!v) throw new Error('no vma');
    expect(showMapVma(v)).toBe('00010000-00011000 r-xp 00000000 00:00 0 ');
  });

  it('smaps reports Rss per VMA from the page tables', () => {
    const { mm } = makeSystem();
    mmapSync(mm, { addr: A, len: 4 * P, prot: RW, flags: FLAGS });
    touch(mm, A, 3 * P);
    const [e] = smaps(mm);
    expect(e.sizeKb).toBe(16);
    expect(e.rssKb).toBe(12);
    expect(e.rssByType).toEqual([0, 3, 0, 0]);
    mprotectSync(mm, A + P, P, PROT_READ);
    expect(smaps(mm).map((x) => x.rssKb)).toEqual([4, 4, 4]);
  });
});

describe('VMA lifetime and per-VMA locks', () => {
  it('a VMA removed from the tree stays alive while a speculative reference is held, then is freed by RCU', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    mmapSync(mm, { addr: A, len: P, prot: RW, flags: FLAGS });
    const vma = mm.vmaLookup(A);
    if (!vma) throw new Error('no vma');
    expect(runSync(getVmaNotZero(vma))).toBe(true);
    munmapSync(mm, A, P);
    runSync(rcu.barrier());
    expect(vma.detached).toBe(true);
    expect(vma.poisoned).toBeNull();
    runSync(putVma(vma));
    runSync(rcu.barrier());
    expect(vma.poisoned).toMatch(/__free_vma/);
    expect(() => vma.checkLive('test')).toThrow(/freed/);
    expect(runSync(rcu.barrier())).toBeUndefined();
  });

  it('vma_start_read fails while the VMA is write-locked in the current mmap write section', () => {
    exploreInTest(
      {
        cpus: 2,
        setup(m: Machine) {
          const mm = new MmStruct({ rcu: new Rcu(m) });
          mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS });
          const vma = mm.vmaLookup(A);
          if (!vma) throw new Error('no vma');
          const seen: boolean[] = [];
          m.spawn(0, 'writer', function* () {
            yield* mm.mmapWriteLock();
            yield* vmaStartWrite(vma);
            seen.push(yield* vmaStartRead(vma));
            yield* mm.mmapWriteUnlock();
            seen.push(yield* vmaStartRead(vma));
          });
          return () => {
            if (seen[0] !== false || seen[1] !== true) throw new Error(`vma_start_read results ${seen}`);
          };
        },
      },
      { policy: 'random', runs: 20 },
      'vma_start_read fails while the VMA is write-locked in the current mmap write section',
    );
  });

  /** A per-VMA-lock fault on CPU 1 against a writer on CPU 0 that marks the VMA and changes it. */
  function perVmaLockScenario(brokenWriter: boolean): Scenario {
    return {
      cpus: 2,
      setup(m: Machine) {
        const mm = new MmStruct({ rcu: new Rcu(m) });
        mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: FLAGS });
        const vma = mm.vmaLookup(A);
        if (!vma) throw new Error('no vma');
        m.spawn(0, 'writer', function* () {
          yield* mm.mmapWriteLock();
          // The broken writer marks the VMA without waiting for its readers.
          if (brokenWriter) yield* vma.vmLockSeq.store(mm.mmLockSeq.value);
          else yield* vmaStartWrite(vma);
          yield* write(vma.line, 'vm_flags change');
          vma.vmFlags ^= VM_SOFTDIRTY;
          yield* mm.mmapWriteUnlock();
        });
        m.spawn(1, 'per-vma-lock fault', function* () {
          for (let i = 0; i < 3; i++) {
            if (!(yield* vmaStartRead(vma))) continue;
            const before = vma.vmFlags;
            yield* read(vma.line, 'fault work');
            yield* read(vma.line, 'fault work');
            kassert(vma.vmFlags === before, 'the VMA changed while its per-VMA read lock was held');
            yield* vmaEndRead(vma);
          }
        });
      },
    };
  }

  it('a VMA read-locked by a fault is never changed under it by a writer that marked it (explorer)', () => {
    const name =
      'a VMA read-locked by a fault is never changed under it by a writer that marked it (explorer)';
    exploreInTest(perVmaLockScenario(false), { policy: 'random', runs: 300, seed: 4 }, name);
    exploreInTest(perVmaLockScenario(false), { policy: 'pct', runs: 300, seed: 5, depth: 3 }, name);
  });

  it('a writer that marks the VMA without waiting for its readers is caught', () => {
    const name = 'a writer that marks the VMA without waiting for its readers is caught';
    expect(() =>
      exploreInTest(perVmaLockScenario(true), { policy: 'random', runs: 300, seed: 4 }, name),
    ).toThrow(/changed while its per-VMA read lock was held/);
  });

  it('works the same with a range lock as the mmap lock', () => {
    const mm = new MmStruct({ mmapLock: 'range' });
    mmapSync(mm, { addr: A, len: 3 * P, prot: RW, flags: FLAGS });
    mprotectSync(mm, A + P, P, PROT_READ);
    expect(mm.mapCount).toBe(3);
    expect(mm.mmapLock.isLocked()).toBe(false);
    expect(mm.mmapLockKind).toBe('range');
  });

  it('munmap of a whole mapping with many VMAs leaves nothing behind', () => {
    const mm = new MmStruct();
    for (let i = 0; i < 200; i++) mmapSync(mm, { addr: A + i * 2 * P, len: P, prot: RW, flags: FLAGS });
    expect(mm.mapCount).toBe(200);
    expect(mm.tree.height()).toBeGreaterThan(1);
    munmapSync(mm, A, 400 * P);
    expect(mm.mapCount).toBe(0);
    expect(mm.tree.root).toBeNull();
    checkMmInvariants([mm]);
  });
});
