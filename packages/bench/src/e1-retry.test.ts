import { describe, expect, it } from 'vitest';
import type { RunRecord } from './experiment.js';
import { e1 } from './experiments/index.js';
import { runConfig } from './run-config.js';
import { WorkloadConfigError } from './workload.js';
import { retry2010 } from './workloads/index.js';

const small = { cpus: 2, seed: 1, filePages: 8, rounds: 1, mmapPages: 16, readAheadKb: 4 } as const;

describe('retry2010 (the 2010 VM_FAULT_RETRY test)', () => {
  it('makes mmap/munmap wait for the disk without the retry and not with it (classic)', () => {
    const held = retry2010.run({ ...small, handler: 'classic', dropMmapLockForIo: false });
    const dropped = retry2010.run({ ...small, handler: 'classic', dropMmapLockForIo: true });
    for (const r of [held, dropped]) {
      expect(r.unit).toBe('faults/s');
      expect(r.extra.majorFaults).toBe(8); // read_ahead_kb 4: every page is one disk read
      expect(r.faults).toBe(8);
      expect(r.speculativeShare).toBe(0);
      expect(r.extra.mmapCalls).toBeGreaterThan(0);
    }
    // Held across an 80 µs read, a writer waits tens of µs; with the retry a call costs about a µs.
    expect(held.extra.mmapMeanUs).toBeGreaterThan(10 * dropped.extra.mmapMeanUs);
    expect(held.extra.mmapMaxUs).toBeGreaterThan(40);
    expect(dropped.extra.mmapCalls).toBeGreaterThan(10 * held.extra.mmapCalls);
  });

  it('per-VMA locks with file VMAs handle every fault without mmap_lock, and without the retry', () => {
    const r = retry2010.run({
      ...small,
      handler: 'pervma',
      handlerOptions: { fileVmas: true },
      dropMmapLockForIo: false,
    });
    expect(r.speculativeShare).toBe(1);
    expect(r.extra.mmapMaxUs).toBeLessThan(20);
    const dufour = retry2010.run({ ...small, handler: 'dufour', dropMmapLockForIo: false });
    expect(dufour.speculativeShare).toBe(0);
    expect(dufour.aborts).toEqual({ spf_vma_notsup: 8 });
  });

  it('refuses a bad configuration with a message that names it', () => {
    expect(() => retry2010.run({ ...small, cpus: 4, handler: 'classic', dropMmapLockForIo: true })).toThrow(
      new WorkloadConfigError('retry2010 cpus must be an integer from 2 to 2, got 4'),
    );
    expect(() =>
      retry2010.run({ ...small, filePages: 0, handler: 'classic', dropMmapLockForIo: true }),
    ).toThrow(/retry2010 filePages must be an integer from 1/);
    const noMode = { ...small, handler: 'classic' } as unknown as Parameters<typeof retry2010.run>[0];
    expect(() => retry2010.run(noMode)).toThrow(/dropMmapLockForIo must be true .* or false .*got undefined/);
    expect(() => e1.configs({ quick: true, seeds: 1, cpus: [4] })).toThrow(
      /E1 runs the 2010 retry test on exactly 2 CPUs .* got --cpus 4; leave --cpus out or pass --cpus 2/,
    );
  });
});

describe('E1', () => {
  it('runs every design with and without the retry, and reports from the records', () => {
    const configs = e1.configs({ quick: true, seeds: 1 });
    expect(configs.map((c) => c.variant)).toEqual([
      'classic/no-retry',
      'classic/retry',
      'dufour/no-retry',
      'dufour/retry',
      'lespinasse/no-retry',
      'lespinasse/retry',
      'pervma/no-retry',
      'pervma/retry',
      'pervma+file/no-retry',
      'pervma+file/retry',
    ]);
    // The same configurations on a smaller file, so the test stays short.
    const records: RunRecord[] = configs.map((c, i) =>
      runConfig({ ...c, params: { ...c.params, filePages: 8, rounds: 1 } }, i),
    );
    for (const r of records) {
      for (const k of ['mmapMeanUs', 'mmapMaxUs', 'majorFaults', 'mmapCalls']) {
        expect(r.result.extra[k], `${r.config.id} ${k}`).toBeGreaterThan(0);
      }
    }
    const rep = e1.report(records, { quick: true, seeds: 1 });
    const table = rep.tables[0].markdown;
    for (const c of configs) expect(table).toContain(`| ${c.variant} |`);
    expect(table).toMatch(/\| pervma\+file\/no-retry \|[^\n]*\| 100% \| 0% \| – \|/);
    expect(table).toMatch(/\| dufour\/no-retry \|[^\n]*\| 0% \| 100% \| spf_vma_notsup 8 \|/);
    expect(rep.answer).toContain('Under the classic handler, an mmap or munmap call takes');
    expect(rep.answer).toMatch(/dufour, lespinasse, pervma leave the mmap\/munmap thread waiting/);
    expect(rep.answer).toMatch(/pervma\+file without the retry keeps the mmap\/munmap latency/);
    expect(rep.plots.map((p) => p.name)).toEqual(['latency', 'worst']);
  });
});
