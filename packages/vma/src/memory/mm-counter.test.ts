import { Cell, type Effect, EffectKind, type Kernel, runSync } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MmStruct } from '../mm-struct.js';
import { taskMemRss } from '../task-mem.js';
import {
  addMmCounter,
  BadRssCounterStateError,
  checkMm,
  getMmCounter,
  getMmCounterSum,
  mmCounter,
  mmCounterFile,
  type RssCounterFactory,
} from './mm-counter.js';

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

/** A counter for the tests below: one plain cell, with `lose` updates dropped on purpose. */
function cellCounter(log: string[], lose = 0): RssCounterFactory {
  return ({ name }) => {
    const c = new Cell(0, name);
    let dropped = 0;
    return {
      *add(delta) {
        log.push(`${name} add ${delta}`);
        if (dropped < lose) {
          dropped++;
          return;
        }
        yield* c.store(c.value + delta);
      },
      *read() {
        return Math.max(0, yield* c.load());
      },
      *sum() {
        return yield* c.load();
      },
    };
  };
}

describe('rssCounting: a factory (the injection point of Lab 7)', () => {
  it('makes one counter per type, named after the mm, and routes add_mm_counter and both reads to it', () => {
    const log: string[] = [];
    const mm = new MmStruct({ rssCounting: cellCounter(log), name: 'mm[7]' });
    expect(mm.rssStat).toHaveLength(4);
    runSync(addMmCounter(mm, MM_ANONPAGES, 5));
    runSync(addMmCounter(mm, MM_ANONPAGES, -2));
    runSync(addMmCounter(mm, MM_FILEPAGES, 1));
    expect(log).toEqual([
      'mm[7]->rss_stat[MM_ANONPAGES] add 5',
      'mm[7]->rss_stat[MM_ANONPAGES] add -2',
      'mm[7]->rss_stat[MM_FILEPAGES] add 1',
    ]);
    expect(runSync(getMmCounter(mm, MM_ANONPAGES))).toBe(3);
    expect(runSync(getMmCounterSum(mm, MM_FILEPAGES))).toBe(1);
    const status = runSync(taskMemRss(mm));
    expect(status).toEqual({ vmRssKb: 16, rssAnonKb: 12, rssFileKb: 4, rssShmemKb: 0, vmSwapKb: 0 });
    // The simulator's own tally follows too (for the invariant checker), whatever the counter says.
    expect(mm.rss[MM_ANONPAGES]).toBe(3);
    // fork gives the child counters of its own from the same factory.
    const child = new MmStruct(mm.childConfig());
    expect(child.rssStat?.[MM_ANONPAGES]).not.toBe(mm.rssStat?.[MM_ANONPAGES]);
    expect(runSync(getMmCounterSum(child, MM_ANONPAGES))).toBe(0);
  });

  it('check_mm at exit sums every counter: a counter that lost an update is reported as a bad rss-counter state', () => {
    const good = new MmStruct({ rssCounting: cellCounter([]) });
    runSync(addMmCounter(good, MM_ANONPAGES, 2));
    runSync(addMmCounter(good, MM_ANONPAGES, -2));
    expect(() => runSync(checkMm(good))).not.toThrow();
    const lossy = new MmStruct({ rssCounting: cellCounter([], 1), name: 'mm[3]' });
    runSync(addMmCounter(lossy, MM_ANONPAGES, 2)); // lost
    runSync(addMmCounter(lossy, MM_ANONPAGES, 1));
    runSync(addMmCounter(lossy, MM_ANONPAGES, -3));
    expect(() => runSync(checkMm(lossy))).toThrow(BadRssCounterStateError);
    expect(() => runSync(checkMm(lossy))).toThrow(
      'BUG: Bad rss-counter state mm:mm[3] type:MM_ANONPAGES val:-2',
    );
  });

  it('the built-in models read their exact value: get_mm_counter never negative, check_mm costs nothing', () => {
    for (const rssCounting of ['percpu', 'atomic'] as const) {
      const mm = new MmStruct({ rssCounting });
      runSync(addMmCounter(mm, MM_ANONPAGES, 4));
      expect(runSync(getMmCounter(mm, MM_ANONPAGES))).toBe(4);
      expect(runSync(getMmCounterSum(mm, MM_ANONPAGES))).toBe(4);
      expect(onCpu(checkMm(mm), 0)).toEqual([]);
    }
  });
});
