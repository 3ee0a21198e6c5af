import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { exitMmap, mmget, mmput } from './exit-mmap.js';
import { BadRssCounterStateError } from './memory/mm-counter.js';
import { MmStruct } from './mm-struct.js';
import { forkSync, mmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

describe('exit_mmap and mmput', () => {
  it('the last mmput releases every page and page table', () => {
    const { mm, mem } = makeSystem();
    const free0 = mem.freeCount;
    mmapSync(mm, { addr: A, len: 8 * P, prot: RW, flags: PRIV });
    mmapSync(mm, { addr: 0x7f0000000000, len: 2 * P, prot: RW, flags: PRIV });
    touch(mm, A, 8 * P);
    touch(mm, 0x7f0000000000, 2 * P);
    runSync(mmget(mm));
    expect(mm.mmUsers.value).toBe(2);
    expect(runSync(mmput(mm))).toBe(false);
    expect(mm.mapCount).toBe(2);
    expect(mm.mmCount.value).toBe(1);
    expect(runSync(mmput(mm))).toBe(true);
    expect(mm.mmUsers.value).toBe(0);
    expect(mm.mmCount.value).toBe(0);
    expect(mm.mapCount).toBe(0);
    expect([...mm.vmas()]).toEqual([]);
    expect(mm.rss.every((x) => x === 0)).toBe(true);
    expect(mm.totalVm).toBe(0);
    // Every page and page table is free again, the PML4 (allocated with the mm, before free0) included.
    expect(mem.freeCount).toBe(free0 + 1);
    expect(mm.pgd.tables.slice(1, 5)).toEqual([0, 0, 0, 0]);
  });

  it('keeps pages a fork child still maps, and frees them with the last mm', () => {
    const { mm, mem } = makeSystem();
    const free0 = mem.freeCount;
    mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: PRIV });
    touch(mm, A, 2 * P);
    const child = forkSync(mm);
    const page = [...child.pageTables.presentPtes(A, A + P)][0]!.page!;
    expect(runSync(mmput(mm))).toBe(true);
    expect([page.refcount, page.mapcount]).toEqual([1, 1]);
    expect(mm.mapCount).toBe(0);
    expect(child.mapCount).toBe(1);
    expect(runSync(mmput(child))).toBe(true);
    expect(mem.freeCount).toBe(free0 + 1);
  });

  it("drops a shared anonymous mapping's shmem pages with its last VMA", () => {
    const { mm, mem } = makeSystem();
    const free0 = mem.freeCount;
    mmapSync(mm, { addr: A, len: 2 * P, prot: RW, flags: MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE });
    const file = mm.findVma(A)!.vmFile as unknown as { refs: number; pages: Map<number, unknown> };
    expect(file.refs).toBe(1);
    runSync(exitMmap(mm));
    expect(file.refs).toBe(0);
    expect(file.pages.size).toBe(0);
    expect(mem.freeCount).toBe(free0 + 1);
  });

  it('tears down an mm that maps nothing', () => {
    const { mm, mem } = makeSystem();
    const free0 = mem.freeCount;
    runSync(exitMmap(mm));
    expect(mem.freeCount).toBe(free0 + 1);
    expect(mm.mapCount).toBe(0);
  });

  it('skips the unmap when nothing is mapped, even where no unmap could succeed (TASK_SIZE 0)', () => {
    const mm = new MmStruct({ taskSize: 0 });
    expect(mm.mapCount).toBe(0);
    runSync(exitMmap(mm));
    expect(mm.mapCount).toBe(0);
  });

  it('releases the mmap lock it took', () => {
    const mm = new MmStruct();
    mmapSync(mm, { addr: A, len: P, prot: RW, flags: PRIV });
    runSync(exitMmap(mm));
    // runSync would throw if the lock were still held.
    runSync(mm.mmapWriteLock());
    runSync(mm.mmapWriteUnlock());
  });

  it('check_mm: an RSS counter that does not sum to zero after the unmap is reported, after the teardown', () => {
    const mm = new MmStruct({
      rssCounting: ({ type }) => ({
        *add() {},
        *read() {
          return 0;
        },
        *sum() {
          return type === 2 ? -1 : 0;
        },
      }),
    });
    mmapSync(mm, { addr: A, len: P, prot: RW, flags: PRIV });
    expect(() => runSync(exitMmap(mm))).toThrow(BadRssCounterStateError);
    expect(mm.mapCount).toBe(0);
  });
});
