import { type Effect, EffectKind, type Kernel, runSync } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MmStruct } from '../mm-struct.js';
import { addMmCounter, mmCounter, mmCounterFile } from './mm-counter.js';

/** Runs `code` as if on CPU `cpu`, returning the effects it performed. */
function onCpu(code: Kernel<void>, cpu: number): Effect[] {
  const seen: Effect[] = [];
  let resume: unknown;
  for (;;) {
    const r = code.next(resume);
    if (r.done) return seen;
    seen.push(r.value);
    resume =
      r.value.kind === EffectKind.Self
        ? { cpu, task: { id: cpu }, inIrq: false, irqsEnabled: true }
        : undefined;
  }
}

describe('mm_counter / mm_counter_file', () => {
  it('accounts anonymous pages in MM_ANONPAGES, shmem in MM_SHMEMPAGES, other file pages in MM_FILEPAGES', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024 });
    const anon = mem.allocPages(0);
    anon.set('anon');
    anon.set('swapbacked');
    const shmem = mem.allocPages(0);
    shmem.set('swapbacked');
    const file = mem.allocPages(0);
    expect(mmCounter(anon)).toBe(MM_ANONPAGES);
    expect(mmCounter(shmem)).toBe(MM_SHMEMPAGES);
    expect(mmCounter(file)).toBe(MM_FILEPAGES);
    expect(mmCounterFile(shmem)).toBe(MM_SHMEMPAGES);
    expect(mmCounterFile(file)).toBe(MM_FILEPAGES);
    expect(new Set([MM_ANONPAGES, MM_SHMEMPAGES, MM_FILEPAGES]).size).toBe(3);
  });
});

describe('add_mm_counter', () => {
  it('counts the same with per-CPU and atomic counters, adding and subtracting only the counter named', () => {
    for (const rssCounting of ['percpu', 'atomic'] as const) {
      const mm = new MmStruct({ rssCounting });
      runSync(addMmCounter(mm, MM_FILEPAGES, 3));
      runSync(addMmCounter(mm, MM_FILEPAGES, -1));
      runSync(addMmCounter(mm, MM_ANONPAGES, 5));
      expect(mm.rss[MM_FILEPAGES]).toBe(2);
      expect(mm.rss[MM_ANONPAGES]).toBe(5);
      expect(mm.rss[MM_SHMEMPAGES]).toBe(0);
    }
  });

  it('percpu (Linux 6.2+): one plain store to this CPU own line, made once per CPU and reused', () => {
    const mm = new MmStruct({ rssCounting: 'percpu' });
    const first = onCpu(addMmCounter(mm, MM_ANONPAGES, 1), 2).filter((e) => e.kind !== EffectKind.Self);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ kind: EffectKind.Write, label: 'add_mm_counter' });
    const line2 = mm.rssCpuLines[2];
    expect(line2).toBeDefined();
    expect(line2?.label).toBe(`${mm.name}->rss_stat[cpu2]`);
    expect(first[0]).toMatchObject({ line: line2 });
    // The same CPU again: the same line, not a new one.
    const again = onCpu(addMmCounter(mm, MM_ANONPAGES, 1), 2).filter((e) => e.kind !== EffectKind.Self);
    expect(again[0]).toMatchObject({ line: line2 });
    expect(mm.rssCpuLines[2]).toBe(line2);
    // Another CPU: its own line, never the shared one.
    const other = onCpu(addMmCounter(mm, MM_ANONPAGES, 1), 0).filter((e) => e.kind !== EffectKind.Self);
    expect(mm.rssCpuLines[0]).toBeDefined();
    expect(mm.rssCpuLines[0]).not.toBe(line2);
    expect(other[0]).toMatchObject({ line: mm.rssCpuLines[0] });
    expect([...first, ...again, ...other].some((e) => 'line' in e && e.line === mm.rssLine)).toBe(false);
    expect(mm.rss[MM_ANONPAGES]).toBe(3);
  });

  it('atomic (before 6.2): a locked read-modify-write of the line shared by every CPU', () => {
    const mm = new MmStruct({ rssCounting: 'atomic' });
    for (const cpu of [0, 1]) {
      const seen = onCpu(addMmCounter(mm, MM_FILEPAGES, 1), cpu);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ kind: EffectKind.Rmw, line: mm.rssLine, label: 'add_mm_counter' });
    }
    expect(mm.rssCpuLines).toEqual([]);
    expect(mm.rss[MM_FILEPAGES]).toBe(2);
  });
});
