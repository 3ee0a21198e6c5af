import { defaultCostModel } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { makeMemoryEnv } from './memory-env.js';

describe('makeMemoryEnv', () => {
  it('has the x86-64 defaults: pte_special on, the default costs, fresh zeroed event counters', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024 });
    const env = makeMemoryEnv({ mem });
    expect(env.mem).toBe(mem);
    expect(env.pteSpecial).toBe(true);
    expect(env.cost).toBe(defaultCostModel);
    expect(env.vmstat).toEqual({ pgalloc: 0, pgtableAlloc: 0 });
    expect(makeMemoryEnv({ mem }).vmstat).not.toBe(env.vmstat);
  });

  it('keeps the options given: pte_special off, a cost model, shared counters', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024 });
    const cost = { ...defaultCostModel, zeroPage: 123 };
    const vmstat = { pgalloc: 5, pgtableAlloc: 6 };
    const env = makeMemoryEnv({ mem, cost, pteSpecial: false, vmstat });
    expect(env.pteSpecial).toBe(false);
    expect(env.cost).toBe(cost);
    expect(env.vmstat).toBe(vmstat);
  });
});
