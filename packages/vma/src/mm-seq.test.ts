import { type Kernel, runSync } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { sysBrk } from './brk.js';
import { dupMmap } from './dup-mmap.js';
import { exitMmap } from './exit-mmap.js';
import { MADV_DONTFORK, sysMadvise } from './madvise.js';
import { MmStruct } from './mm-struct.js';
import { sysMmap } from './mmap.js';
import { sysMprotect } from './mprotect.js';
import { sysMremap } from './mremap.js';
import { sysMunmap } from './munmap.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE } from './vm-flags.js';

// mm->mmap_seq of Lespinasse's SPF series (mm.mmSeq): odd exactly while a writer holds mmap_lock, bumped by
// two by every write-locked section, so a speculative reader that saw an even value and sees it again knows
// no writer came in between.

function newMm(): MmStruct {
  return new MmStruct({ pageTables: PagetableOps.factory({ mem: new PhysicalMemory({ size: 1 << 22 }) }) });
}

const A = 0x4000_0000;

describe('mm_seq (mmap_seq)', () => {
  it('is odd under mmap_write_lock and even again after mmap_write_unlock or mmap_write_downgrade', () => {
    const mm = newMm();
    const seen: number[] = [];
    runSync(
      (function* () {
        seen.push(mm.mmSeq.peek());
        yield* mm.mmapWriteLock();
        seen.push(mm.mmSeq.peek());
        yield* mm.mmapWriteUnlock();
        seen.push(mm.mmSeq.peek());
        yield* mm.mmapWriteLock();
        seen.push(mm.mmSeq.peek());
        yield* mm.mmapWriteDowngrade();
        seen.push(mm.mmSeq.peek());
        expect(mm.mmapLock.isLocked()).toBe(true); // still held, for reading
        yield* mm.mmapReadUnlock();
        seen.push(mm.mmSeq.peek());
      })(),
    );
    expect(seen.map((s) => s & 1)).toEqual([0, 1, 0, 1, 0, 0]);
    expect(seen[5]).toBe(seen[0] + 4);
  });

  it('every write-locked syscall, fork (parent and child) and exit moves it on by two, leaving it even', () => {
    const mm = newMm();
    const step = (what: string, body: () => Kernel<unknown>, target = mm): void => {
      const before = target.mmSeq.peek();
      runSync(body());
      if (mm.ownsSyncRcu) runSync(mm.rcu.synchronize());
      expect({ what, delta: target.mmSeq.peek() - before }).toEqual({ what, delta: 2 });
    };
    const RW = PROT_READ | PROT_WRITE;
    step('mmap', () => sysMmap(mm, { addr: A, len: 8 * 4096, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS }));
    step('mprotect', () => sysMprotect(mm, A, 4096, PROT_READ));
    step('madvise(MADV_DONTFORK)', () => sysMadvise(mm, A + 4096, 4096, MADV_DONTFORK));
    step('mremap', () => sysMremap(mm, A + 6 * 4096, 2 * 4096, 4 * 4096, MREMAP_MAYMOVE));
    step('munmap', () => sysMunmap(mm, A + 2 * 4096, 4096));
    step('brk', () => sysBrk(mm, mm.brk + 4096));
    let child: MmStruct | null = null;
    step('fork', function* () {
      child = yield* dupMmap(mm);
    });
    const c = child as unknown as MmStruct;
    expect(c.mmSeq.peek() & 1).toBe(0);
    step('exit_mmap', () => exitMmap(c), c);
    step('exit_mmap', () => exitMmap(mm));
  });
});
