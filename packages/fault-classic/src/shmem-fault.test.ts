import { defaultCostModel, EffectKind, type Kernel, runSync } from '@spf/machine';
import { OutOfMemoryError, type Page, putPage } from '@spf/pagetable';
import { MAP_PRIVATE, MAP_SHARED, MM_SHMEMPAGES, PROT_READ, PROT_WRITE, type ShmemZeroFile } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS } from './fault-flags.js';
import { shmemFault, shmemVmOps } from './shmem-fault.js';
import { fixtureProblems, makeFixture, TestFile } from './test-support/fixture.js';

const A = 0x2000_0000;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

/** Runs `code` alone to the end, returning its value and the labels of the delays it charged. */
function drive<T>(code: Kernel<T>): { value: T; delays: Array<[number, string | undefined]> } {
  const delays: Array<[number, string | undefined]> = [];
  for (let r = code.next(); ; r = code.next()) {
    if (r.done) return { value: r.value, delays };
    if (r.value.kind === EffectKind.Delay) delays.push([r.value.ns, r.value.label]);
  }
}

describe('shmem_fault for shared anonymous memory', () => {
  it('the first fault at an offset creates a zeroed, swap-backed, uptodate page in the shmem cache', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 4, PROT_READ | PROT_WRITE, MAP_SHARED);
    const file = fx.mm.findVma(A)?.vmFile as ShmemZeroFile;
    const vmf = fx.vmfAt(A + 2 * 4096, 0);
    const pgalloc = fx.env.vmstat.pgalloc;
    const { value, delays } = drive(shmemFault(vmf));
    expect(value).toBe(0);
    const page = vmf.page as Page;
    expect(file.pages.get(2)).toBe(page);
    expect([...file.pages.keys()]).toEqual([2]);
    expect(page.mapping).toBe(file);
    expect(page.index).toBe(2);
    expect(page.test('swapbacked')).toBe(true);
    expect(page.test('uptodate')).toBe(true);
    expect(page.refcount).toBe(2); // the cache's and the caller's
    expect(fx.mem.read8(page.pa + 100)).toBe(0);
    expect(fx.env.vmstat.pgalloc).toBe(pgalloc + 1);
    expect(delays).toEqual([[defaultCostModel.zeroPage, 'clear_page (shmem)']]);
    runSync(putPage(page));
  });

  it('a later fault at the same offset returns the cached page with another reference, allocating nothing', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 4, PROT_READ | PROT_WRITE, MAP_SHARED);
    const first = fx.vmfAt(A, 0);
    runSync(shmemFault(first));
    const page = first.page as Page;
    fx.mem.write8(page.pa, 0x5c);
    const free = fx.mem.freeCount;
    const again = fx.vmfAt(A + 7, 0);
    expect(drive(shmemFault(again))).toEqual({ value: 0, delays: [] });
    expect(again.page).toBe(page);
    expect(page.refcount).toBe(3);
    expect(fx.mem.read8(page.pa)).toBe(0x5c);
    expect(fx.mem.freeCount).toBe(free);
    runSync(putPage(page));
    runSync(putPage(page));
  });

  it('out of memory is VM_FAULT_OOM with nothing cached', () => {
    const fx = makeFixture({ memory: 1024 * 1024 });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE, MAP_SHARED);
    const file = fx.mm.findVma(A)?.vmFile as ShmemZeroFile;
    const vmf = fx.vmfAt(A, 0);
    const taken: Page[] = [];
    for (;;) {
      try {
        taken.push(fx.mem.allocPages(0));
      } catch (e) {
        if (e instanceof OutOfMemoryError) break;
        throw e;
      }
    }
    expect(runSync(shmemFault(vmf))).toBe(VM_FAULT_OOM);
    expect(file.pages.size).toBe(0);
    expect(vmf.page).toBeUndefined();
    for (const p of taken) runSync(putPage(p));
  });

  it('a VMA whose file is not shmem gets VM_FAULT_SIGBUS', () => {
    const fx = makeFixture();
    const file = new TestFile(fx.mem);
    fx.mmapFile(A, 1, PROT_READ, MAP_PRIVATE, file.mmapFile());
    expect(runSync(shmemFault(fx.vmfAt(A, 0)))).toBe(VM_FAULT_SIGBUS);
    expect(file.pages.size).toBe(0);
  });

  it('through the fault path: a write is seen by every mapping of the shmem page and counted in MM_SHMEMPAGES', () => {
    expect(shmemVmOps.fault).toBe(shmemFault);
    const fx = makeFixture();
    fx.mmapAnon(A, 2, PROT_READ | PROT_WRITE, MAP_SHARED);
    expect(fx.touch(A + 4096 + 3, 'w', 0x6e)).toMatchObject({ ok: true, faults: 1 });
    const file = fx.mm.findVma(A)?.vmFile as ShmemZeroFile;
    const page = file.pages.get(1) as Page;
    expect(fx.mem.read8(page.pa + 3)).toBe(0x6e);
    expect([page.refcount, page.mapcount]).toEqual([2, 1]);
    expect(fx.mm.rss[MM_SHMEMPAGES]).toBe(1);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0, faults: 1 });
    expect(fx.mm.rss[MM_SHMEMPAGES]).toBe(2);
  });
});
