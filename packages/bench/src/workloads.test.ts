import { describe, expect, it } from 'vitest';
import { WorkloadConfigError } from './workload.js';
import {
  appLaunch,
  ebizzy,
  gupReader,
  kernbench,
  malloc1,
  pageFault1,
  pft,
  sparseTouch,
  workloadByName,
  WORKLOADS,
} from './workloads/index.js';

describe('workloads', () => {
  it('page_fault1 faults once per page per round in both modes, and processes mode never speculates under Dufour (one user per mm)', () => {
    const t = pageFault1.run({ cpus: 2, handler: 'dufour', seed: 1, mode: 'threads', pages: 16, rounds: 2 });
    const p = pageFault1.run({
      cpus: 2,
      handler: 'dufour',
      seed: 1,
      mode: 'processes',
      pages: 16,
      rounds: 2,
    });
    expect(t.faults).toBe(2 * 2 * 16);
    expect(p.faults).toBe(2 * 2 * 16);
    expect(t.speculativeShare).toBeGreaterThan(0);
    expect(p.speculativeShare).toBe(0);
    expect(t.unit).toBe('faults/s');
    expect(t.score).toBeCloseTo((2 * 2 * 16) / (t.simNs / 1e9), 6);
  });

  it('pft faults every page of every share once and is reproducible from its seed', () => {
    const a = pft.run({ cpus: 3, handler: 'pervma', seed: 5, pagesPerThread: 8 });
    const b = pft.run({ cpus: 3, handler: 'pervma', seed: 5, pagesPerThread: 8 });
    expect(a.faults).toBe(24);
    expect(a).toEqual(b);
    const c = pft.run({ cpus: 3, handler: 'pervma', seed: 6, pagesPerThread: 8 });
    expect(c.simNs).not.toBe(a.simNs);
  });

  it('malloc1 touches only the chunk header: one fault per iteration', () => {
    const r = malloc1.run({ cpus: 2, handler: 'classic', seed: 1, pages: 64, iterations: 5 });
    expect(r.faults).toBe(10);
    expect(r.unit).toBe('iterations/s');
  });

  it('ebizzy faults every page of every copy buffer, plus the chunk set-up', () => {
    const r = ebizzy.run({ cpus: 2, handler: 'classic', seed: 1, chunks: 3, chunkPages: 4, records: 3 });
    expect(r.faults).toBe(3 * 4 + 2 * 3 * 4);
  });

  it('kernbench charges its user work as user time, the rest of the children as system time', () => {
    const r = kernbench.run({
      cpus: 2,
      handler: 'classic',
      seed: 1,
      jobs: 4,
      pagesPerJob: 8,
      userNsPerJob: 80_000,
    });
    expect(r.extra.userSeconds).toBeCloseTo((4 * 80_000) / 1e9, 12);
    expect(r.extra.systemSeconds).toBeGreaterThan(0);
    expect(r.score).toBeGreaterThan(r.extra.userSeconds / 2);
  });

  it('app_launch: a large munmap delays the stack mmaps (they wait for mmap_lock)', () => {
    const base = { cpus: 3, handler: 'classic', seed: 1, threads: 12, stackPages: 8, touchPages: 1 } as const;
    const quiet = appLaunch.run({ ...base, bigMunmapPages: 0 });
    const busy = appLaunch.run({ ...base, bigMunmapPages: 256 });
    expect(busy.extra.stackMmapMaxUs).toBeGreaterThan(quiet.extra.stackMmapMaxUs * 2);
  });

  it('gup_reader: a longer walk under mmap_lock makes the writer wait longer', () => {
    const base = { cpus: 2, handler: 'classic', seed: 1, walks: 6, writerOps: 6, nsPerVma: 50 } as const;
    const short = gupReader.run({ ...base, vmas: 10 });
    const long = gupReader.run({ ...base, vmas: 200 });
    expect(long.extra.writerMaxUs).toBeGreaterThan(short.extra.writerMaxUs);
  });

  it('sparse_touch: without speculative table allocation Lespinasse falls back on every fault that needs a table', () => {
    const base = {
      cpus: 2,
      handler: 'lespinasse',
      seed: 1,
      slotsPerThread: 6,
      freePgtablesUnderPtl: true,
    } as const;
    const off = sparseTouch.run(base);
    const on = sparseTouch.run({ ...base, handlerOptions: { specPgtableAlloc: true } });
    expect(off.speculativeShare).toBeLessThan(0.2);
    expect(on.speculativeShare).toBeGreaterThan(off.speculativeShare + 0.5);
  });

  it('refuses bad sizes with a message naming the parameter, and unknown workloads with the known names', () => {
    expect(() => pft.run({ cpus: 2, handler: 'classic', seed: 1, pagesPerThread: 0 })).toThrow(
      WorkloadConfigError,
    );
    expect(() => pft.run({ cpus: 2000, handler: 'classic', seed: 1, pagesPerThread: 1 })).toThrow(
      /cpus must be an integer from 1 to 1024/,
    );
    expect(() => workloadByName('nope')).toThrow(/unknown workload "nope"; choose one of page_fault1/);
    expect(WORKLOADS.map((w) => w.name)).toContain('ebizzy');
  });
});
