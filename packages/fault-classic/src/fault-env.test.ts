import { defaultCostModel } from '@spf/machine';
import { PhysicalMemory, ptePfn } from '@spf/pagetable';
import { PROT_READ, PROT_WRITE } from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { VmStat } from './fault-counters.js';
import { DEFAULT_FAULT_AROUND_BYTES, makeFaultEnv } from './fault-env.js';
import { builtinPteFaultPaths } from './pte-fault-paths.js';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;
const MiB = 1024 * 1024;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('makeFaultEnv', () => {
  it("has Linux's x86-64 defaults", () => {
    const mem = new PhysicalMemory({ size: 4 * MiB, zeroPage: true });
    const env = makeFaultEnv({ mem, cost: defaultCostModel });
    expect(env.mem).toBe(mem);
    expect(env.cost).toBe(defaultCostModel);
    expect(env.useZeroPage).toBe(true);
    expect(env.pteSpecial).toBe(true);
    expect(env.vmstat).toEqual(new VmStat());
    expect(env.freePgtablesUnderPtl).toBe(false);
    expect(env.pgtableFreeRcu).toBe(false);
    expect(env.pteFaultPaths).toBeUndefined();
    // fault_around_bytes defaults to 64 KiB: 16 pages.
    expect(DEFAULT_FAULT_AROUND_BYTES).toBe(16 * 4096);
    expect(env.faultAroundBytes).toBe(DEFAULT_FAULT_AROUND_BYTES);
    // Each environment counts its own events.
    expect(makeFaultEnv({ mem, cost: defaultCostModel }).vmstat).not.toBe(env.vmstat);
  });

  it('keeps every option it is given', () => {
    const mem = new PhysicalMemory({ size: 4 * MiB, zeroPage: true });
    const vmstat = new VmStat();
    const env = makeFaultEnv({
      mem,
      cost: defaultCostModel,
      useZeroPage: false,
      pteSpecial: false,
      vmstat,
      freePgtablesUnderPtl: true,
      pgtableFreeRcu: true,
      pteFaultPaths: builtinPteFaultPaths,
      faultAroundBytes: 4096,
    });
    expect(env.useZeroPage).toBe(false);
    expect(env.pteSpecial).toBe(false);
    expect(env.vmstat).toBe(vmstat);
    expect(env.freePgtablesUnderPtl).toBe(true);
    expect(env.pgtableFreeRcu).toBe(true);
    expect(env.pteFaultPaths).toBe(builtinPteFaultPaths);
    expect(env.faultAroundBytes).toBe(4096);
  });

  it('uses the zero page only when physical memory has one, even when asked to', () => {
    const none = new PhysicalMemory({ size: 4 * MiB, zeroPage: false });
    expect(none.zeroPfn).toBeLessThan(0);
    expect(makeFaultEnv({ mem: none, cost: defaultCostModel }).useZeroPage).toBe(false);
    expect(makeFaultEnv({ mem: none, cost: defaultCostModel, useZeroPage: true }).useZeroPage).toBe(false);
  });

  it('a read fault of private anonymous memory maps the zero page by default, a fresh page without one', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0 });
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(fx.env.vmstat.pgalloc).toBe(0);

    const bare = makeFixture({ zeroPage: false });
    bare.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(bare.touch(A, 'r')).toMatchObject({ ok: true, value: 0 });
    expect(bare.env.vmstat.pgalloc).toBe(1);
  });
});
