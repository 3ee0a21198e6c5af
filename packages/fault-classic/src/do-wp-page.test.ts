import { runSync } from '@spf/machine';
import { ptePfn, pteWrite } from '@spf/pagetable';
import { dupMmap, MM_ANONPAGES, type MmStruct, PagetableOps, PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskFaultCounters } from './fault-counters.js';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('do_wp_page', () => {
  it('write after read of the zero page allocates a private zeroed page (a COW of the zero page)', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(fx.touch(A, 'w', 7)).toMatchObject({ ok: true, faults: 1 });
    const pte = fx.pte(A);
    expect(ptePfn(pte)).not.toBe(fx.mem.zeroPfn);
    expect(pteWrite(pte)).toBe(true);
    expect(fx.touch(A, 'r')).toMatchObject({ value: 7 });
    expect(fx.touch(A + 1, 'r')).toMatchObject({ value: 0 });
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.task.minflt).toBe(2);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.invariantProblems()).toEqual([]);
  });

  it('COW after fork: the writer gets a copy, the other side keeps the old contents, and the last one reuses', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE);
    fx.touch(A, 'w', 0x11);
    const parentPfn = ptePfn(fx.pte(A));
    const child: MmStruct = fx.track(
      runSync(dupMmap(fx.mm, PagetableOps.factory({ mem: fx.mem, mmu: fx.mmu }))),
    );
    const childTask = new TaskFaultCounters();
    // Both see the same page, write-protected, with two references.
    expect(ptePfn(fx.pte(A, child))).toBe(parentPfn);
    expect(pteWrite(fx.pte(A))).toBe(false);
    expect(fx.mem.page(parentPfn).refcount).toBe(2);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ ok: true, value: 0x11, faults: 0 });

    // The child writes: it gets its own copy holding the old contents.
    expect(fx.touch(A, 'w', 0x22, child, childTask)).toMatchObject({ ok: true, faults: 1 });
    const childPfn = ptePfn(fx.pte(A, child));
    expect(childPfn).not.toBe(parentPfn);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ value: 0x22 });
    expect(fx.touch(A + 1, 'r', 0, child, childTask)).toMatchObject({ value: 0 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 0x11 });
    expect(fx.mem.page(parentPfn).refcount).toBe(1);

    // The parent writes: its page is exclusive now, so it is reused in place, not copied.
    expect(fx.touch(A, 'w', 0x33)).toMatchObject({ ok: true, faults: 1 });
    expect(ptePfn(fx.pte(A))).toBe(parentPfn);
    expect(fx.env.vmstat.cowReuses).toBe(1);
    expect(fx.env.vmstat.cowCopies).toBe(1);
    expect(fx.touch(A, 'r', 0, child, childTask)).toMatchObject({ value: 0x22 });
    expect(childTask.minflt).toBe(1);
    expect(fx.invariantProblems([fx.mm, child])).toEqual([]);
  });
});
