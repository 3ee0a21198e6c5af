import { InvalidArgumentError, MODERN_CPU_FEATURES, UnsupportedCpuFeatureError } from '@spf/pagetable';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from './system.js';

const A = 0x4000_0000;

describe('boot({ cpuFeatures })', () => {
  it('defaults to a modern CPU', () => {
    expect(boot().mmu.features).toEqual(MODERN_CPU_FEATURES);
  });
  it('boots and runs user code on an older CPU (no 1 GiB pages, LA57, SMEP, SMAP, PKU, PKS, PCID, PGE)', () => {
    const older = {
      pdpe1gb: false,
      la57: false,
      smep: false,
      smap: false,
      pku: false,
      pks: false,
      pcid: false,
      invpcid: false,
      pge: false,
    };
    const sys = boot({ cpus: 2, cpuFeatures: older });
    expect(sys.mmu.features).toEqual({ ...older, nx: true });
    expect(sys.mmu.cpu(1).pge).toBe(false);
    let seen = -1;
    sys.spawnProcess('rw', function* (u) {
      yield* u.mmap(A, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      yield* u.store8(A + 5, 42);
      seen = yield* u.load8(A + 5);
    });
    expect(sys.run().ok).toBe(true);
    expect(seen).toBe(42);
  });
  it('refuses a CPU without NX with a typed error saying why (the kernel always sets _PAGE_NX)', () => {
    expect(() => boot({ cpuFeatures: { nx: false } })).toThrow(UnsupportedCpuFeatureError);
    expect(() => boot({ cpuFeatures: { nx: false } })).toThrow(/__supported_pte_mask/);
  });
  it('refuses an unknown feature name', () => {
    expect(() => boot({ cpuFeatures: { page2gb: true } as never })).toThrow(InvalidArgumentError);
  });
});
