import { describe, expect, it } from 'vitest';
import type { RunRecord } from './experiment.js';
import { E2_DESIGNS, e2 } from './experiments/index.js';
import { runConfig } from './run-config.js';
import { WorkloadConfigError } from './workload.js';
import { pageFault2, pageFault3, pageFault4, vmFileWindow } from './workloads/index.js';

const small = { cpus: 2, seed: 1, mode: 'threads', pages: 16, rounds: 2 } as const;
const perVmaFile = { handler: 'pervma', handlerOptions: { fileVmas: true } } as const;

describe('the will-it-scale file workloads', () => {
  it('page_fault2 and page_fault3 take one write fault per page per round, in both modes, none from the disk', () => {
    for (const w of [pageFault2, pageFault3]) {
      for (const mode of ['threads', 'processes'] as const) {
        const r = w.run({ ...small, mode, handler: 'classic' });
        expect(r.faults, `${w.name} ${mode}`).toBe(2 * 2 * 16);
        expect(r.extra.majorFaults).toBe(0);
        expect(r.unit).toBe('iterations/s');
        expect(r.score).toBeCloseTo((2 * 2 * 16) / (r.simNs / 1e9), 6);
      }
    }
  });

  it('per-VMA locks with file VMAs take the COW and page_mkwrite faults without mmap_lock; SPF v12 falls back on every one', () => {
    const pf3 = pageFault3.run({ ...small, ...perVmaFile });
    expect(pf3.speculativeShare).toBe(1);
    const pf2 = pageFault2.run({ ...small, ...perVmaFile });
    expect(pf2.speculativeShare).toBeGreaterThan(0.9);
    const dufour = pageFault3.run({ ...small, handler: 'dufour' });
    expect(dufour.speculativeShare).toBe(0);
    expect(Object.keys(dufour.aborts)).toEqual(['spf_vma_notsup']);
  });

  it('SPF v12 with file VMAs (the 2019 proposal) takes COW faults without mmap_lock under freeVma and falls back under removeVma', () => {
    const dufourFile = { handler: 'dufour', handlerOptions: { fileVmas: true } } as const;
    const own = pageFault2.run({ ...small, ...dufourFile });
    expect(own.speculativeShare).toBeGreaterThan(0.5);
    const removeVma = pageFault2.run({ ...small, ...dufourFile, vmFileRelease: 'removeVma' });
    expect(removeVma.speculativeShare).toBe(0);
    expect(removeVma.aborts.spf_file_release).toBeGreaterThan(0);
    const lespinasse2022 = pageFault2.run({
      ...small,
      handler: 'lespinasse',
      handlerOptions: { fileVmas: false },
    });
    expect(lespinasse2022.speculativeShare).toBe(0);
  });

  it('page_fault4: a cached file is mapped by fault-around (16 pages a fault), an uncached one is read from the disk', () => {
    const cached = pageFault4.run({ ...small, handler: 'classic', cache: 'cached' });
    expect(cached.faults).toBe((2 * 2 * 16) / 16);
    expect(cached.extra.majorFaults).toBe(0);
    const uncached = pageFault4.run({ ...small, handler: 'classic', cache: 'uncached' });
    expect(uncached.extra.majorFaults).toBeGreaterThan(0);
    expect(uncached.simNs).toBeGreaterThan(80_000); // at least one disk read
    expect(() => pageFault4.run({ ...small, handler: 'classic', cache: 'warm' as 'cached' })).toThrow(
      /page_fault4 cache must be cached or uncached, got "warm"/,
    );
    expect(() => pageFault2.run({ ...small, handler: 'classic', mode: 'fibers' as 'threads' })).toThrow(
      WorkloadConfigError,
    );
  });

  it('vm_file_window: releasing vm_file with the VMA makes umount wait for a speculative fault holding it', () => {
    const at = (vmFileRelease: 'removeVma' | 'freeVma' | 'rcu', load: 'idle' | 'spec-major') =>
      vmFileWindow.run({ cpus: 2, seed: 0, handler: 'classic', vmFileRelease, load }).score;
    expect(at('removeVma', 'spec-major')).toBeLessThan(1000);
    expect(at('freeVma', 'idle')).toBeLessThan(1000);
    expect(at('freeVma', 'spec-major')).toBeGreaterThan(80_000);
    expect(at('rcu', 'idle')).toBeGreaterThan(at('removeVma', 'idle'));
  });
});

describe('E2', () => {
  it('runs every workload under every design and vm_file release option, and the window of each', () => {
    const configs = e2.configs({ quick: true, seeds: 1 });
    const designs = Object.keys(E2_DESIGNS).length;
    for (const s of ['page_fault2', 'page_fault3', 'page_fault4-cached', 'page_fault4-uncached']) {
      expect(configs.filter((c) => c.series === s)).toHaveLength(designs * 3 * 2); // 2 CPU counts
    }
    expect(configs.filter((c) => c.series.startsWith('window-'))).toHaveLength(designs * 3 * 2);
    expect(new Set(configs.map((c) => c.id)).size).toBe(configs.length);
    const full = e2.configs({ quick: false, seeds: 1 });
    expect(full.some((c) => c.series === 'page_fault3-processes')).toBe(true);
  });

  it('answers from its figures: yes for a design that takes file faults without mmap_lock, and not when none does', () => {
    const wanted = (v: string) =>
      (v.startsWith('classic/') || v.startsWith('pervma+file/')) && !v.endsWith('/rcu');
    const configs = e2
      .configs({ quick: true, seeds: 1, cpus: [2] })
      .filter((c) => (c.series === 'page_fault3' || c.series.startsWith('window-')) && wanted(c.variant));
    const records: RunRecord[] = configs.map((c, i) => runConfig(c, i));
    const rep = e2.report(records, { quick: true, seeds: 1, cpus: [2] });
    expect(rep.answer).toMatch(
      /page_fault3 at 2 CPUs, against classic: pervma\+file \(removeVma\) [0-9.]+× with 100% of faults without mmap_lock/,
    );
    expect(rep.answer).toMatch(
      /So yes, file-backed mappings work without mmap_lock: pervma\+file, vm_file released in removeVma, takes most faults of page_fault3 \(100%\)/,
    );
    expect(rep.answer).toMatch(
      /released in __free_vma\(\) it is .* but 80\.[0-9] µs when a speculative fault holds it/,
    );
    expect(rep.tables.map((t) => t.title)).toContain(
      'The umount-EBUSY window: simulated µs from munmap returning until umount(2) succeeds',
    );
    // The same records with every fault taken under mmap_lock: the answer must not claim file VMAs work.
    const none = records.map((r) => ({ ...r, result: { ...r.result, speculativeShare: 0 } }));
    const no = e2.report(none, { quick: true, seeds: 1, cpus: [2] });
    expect(no.answer).not.toMatch(/So yes/);
    expect(no.answer).toMatch(/No measured design handles file faults without mmap_lock/);
  });

  it('runs each design under its own release option and reports how often the boot option made it fall back', () => {
    const wanted = (v: string) =>
      v === 'classic/removeVma' || v === 'dufour+file/removeVma' || v === 'dufour+file/freeVma';
    const configs = e2
      .configs({ quick: true, seeds: 1, cpus: [2] })
      .filter((c) => c.series === 'page_fault2' && wanted(c.variant));
    expect(configs).toHaveLength(3);
    const records: RunRecord[] = configs.map((c, i) => runConfig(c, i));
    const rep = e2.report(records, { quick: true, seeds: 1, cpus: [2] });
    expect(rep.answer).toMatch(
      /page_fault2 at 2 CPUs, against classic: dufour\+file \(freeVma\) [0-9.]+× with/,
    );
    expect(rep.answer).toMatch(/fell back for that reason: dufour\+file\/removeVma 100%/);
    expect(rep.answer).toMatch(
      /So yes, file-backed mappings work without mmap_lock: dufour\+file, vm_file released in freeVma/,
    );
    // Without the release counters the report must not claim such fallbacks.
    const clean = records.map((r) => ({ ...r, result: { ...r.result, aborts: {} } }));
    expect(e2.report(clean, { quick: true, seeds: 1, cpus: [2] }).answer).not.toMatch(
      /fell back for that reason/,
    );
  });
});
