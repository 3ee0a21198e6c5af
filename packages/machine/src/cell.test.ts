import { describe, expect, it } from 'vitest';
import { AtomicCell, Cell } from './cell.js';
import { EffectKind, type Kernel } from './effects.js';
import { kassert } from './errors.js';
import { explore, type Scenario } from './explore.js';
import { MemoryLine } from './memory-line.js';
import { runSync } from './run-sync.js';

/** The effect kinds a piece of kernel code yields, and what it returns, stepping it by hand. */
function effectsOf<T>(code: Kernel<T>): { kinds: number[]; result: T } {
  const kinds: number[] = [];
  for (;;) {
    const r = code.next(undefined);
    if (r.done) return { kinds, result: r.value };
    kinds.push(r.value.kind);
  }
}

/**
 * Two CPUs each add one to a counter with `inc` `iterations` times; the final check says whether an
 * increment was lost. Explored exhaustively (dfs) it tells an atomic increment from a racy one.
 */
function incrementScenario(inc: (c: AtomicCell) => Kernel<unknown>, iterations = 2): Scenario {
  return {
    name: 'increment',
    cpus: 2,
    setup(m) {
      const counter = new AtomicCell(0, 'counter');
      for (let cpu = 0; cpu < 2; cpu++) {
        m.spawn(cpu, `inc${cpu}`, function* () {
          for (let k = 0; k < iterations; k++) yield* inc(counter);
        });
      }
      return () =>
        kassert(counter.value === 2 * iterations, `counter is ${counter.value}, expected ${2 * iterations}`);
    },
  };
}

const dfs = { policy: 'dfs', bound: 3 } as const;

describe('Cell lines', () => {
  it('makes its own line from a label, and shares a line it is given', () => {
    const own = new Cell(1, 'mm->count');
    expect(own.line).toBeInstanceOf(MemoryLine);
    expect(own.line.label).toBe('mm->count');
    const line = new MemoryLine('struct page');
    const a = new Cell(0, line);
    const b = new AtomicCell(0, line);
    expect(a.line).toBe(line);
    expect(b.line).toBe(line);
    expect(b.line.label).toBe('struct page');
  });
});

describe('Cell operations (single CPU)', () => {
  it('load returns the value after one read; store writes after one write', () => {
    const c = new Cell('a', 'c');
    expect(effectsOf(c.load())).toEqual({ kinds: [EffectKind.Read], result: 'a' });
    const st = c.store('b');
    expect(st.next().value).toMatchObject({ kind: EffectKind.Write });
    // The value changes only when the effect has been performed (the generator resumed).
    expect(c.value).toBe('a');
    expect(st.next().done).toBe(true);
    expect(c.value).toBe('b');
    expect(runSync(c.load())).toBe('b');
  });

  it('xchg stores the new value and returns the old one in one locked RMW', () => {
    const c = new Cell(3, 'c');
    expect(effectsOf(c.xchg(7))).toEqual({ kinds: [EffectKind.Rmw], result: 3 });
    expect(c.value).toBe(7);
    expect(runSync(c.xchg(9))).toBe(7);
    expect(c.value).toBe(9);
  });

  it('cmpxchg stores only when the value equals the expected one, and always returns the value seen', () => {
    const c = new Cell<string | null>(null, 'owner');
    expect(effectsOf(c.cmpxchg(null, 'T0'))).toEqual({ kinds: [EffectKind.Rmw], result: null });
    expect(c.value).toBe('T0');
    // Fails: the value is not the expected one; nothing is stored, the value seen is returned.
    expect(runSync(c.cmpxchg(null, 'T1'))).toBe('T0');
    expect(c.value).toBe('T0');
    expect(runSync(c.cmpxchg('T1', null))).toBe('T0');
    expect(c.value).toBe('T0');
    expect(runSync(c.cmpxchg('T0', null))).toBe('T0');
    expect(c.value).toBeNull();
  });

  it('update applies the function to the current value and returns the old value', () => {
    const c = new Cell(5, 'c');
    const seen: number[] = [];
    expect(
      effectsOf(
        c.update((v) => {
          seen.push(v);
          return v * 3;
        }),
      ),
    ).toEqual({ kinds: [EffectKind.Rmw], result: 5 });
    expect(seen).toEqual([5]);
    expect(c.value).toBe(15);
  });

  it('fetchAdd returns the old value and addReturn the new one, both adding d', () => {
    const c = new AtomicCell(10, 'atomic_t');
    expect(effectsOf(c.fetchAdd(3))).toEqual({ kinds: [EffectKind.Rmw], result: 10 });
    expect(c.value).toBe(13);
    expect(runSync(c.fetchAdd(-5))).toBe(13);
    expect(c.value).toBe(8);
    expect(effectsOf(c.addReturn(4))).toEqual({ kinds: [EffectKind.Rmw], result: 12 });
    expect(c.value).toBe(12);
    expect(runSync(c.addReturn(-12))).toBe(0);
    expect(c.value).toBe(0);
  });
});

describe('Cell RMW atomicity (two CPUs, every schedule within the bound)', () => {
  it('a plain load then store loses an update in some schedule (the check can fail)', () => {
    const res = explore(
      incrementScenario(function* (c) {
        const v = yield* c.load();
        yield* c.store(v + 1);
      }),
      dfs,
    );
    expect(res.failure?.message).toMatch(/counter is [123], expected 4/);
  });

  it('fetchAdd, addReturn, update and xchg never lose an update', () => {
    const incs: ((c: AtomicCell) => Kernel<unknown>)[] = [
      (c) => c.fetchAdd(1),
      (c) => c.addReturn(1),
      (c) => c.update((v) => v + 1),
    ];
    for (const inc of incs) {
      const res = explore(incrementScenario(inc), dfs);
      expect(res.exhausted).toBe(true);
      expect(res.failure).toBeNull();
    }
  });

  it('a cmpxchg retry loop never loses an update', () => {
    const res = explore(
      incrementScenario(function* (c) {
        let old = yield* c.load();
        for (;;) {
          const seen = yield* c.cmpxchg(old, old + 1);
          if (seen === old) return;
          old = seen;
        }
      }),
      dfs,
    );
    expect(res.exhausted).toBe(true);
    expect(res.failure).toBeNull();
  });

  it('xchg hands a token to exactly one of two CPUs', () => {
    const res = explore(
      {
        name: 'xchg token',
        cpus: 2,
        setup(m) {
          const token = new Cell(1, 'token');
          const got = [0, 0];
          for (let cpu = 0; cpu < 2; cpu++) {
            m.spawn(cpu, `t${cpu}`, function* () {
              got[cpu] = yield* token.xchg(0);
            });
          }
          return () => kassert(got[0] + got[1] === 1 && token.value === 0, `tokens taken: ${got}`);
        },
      },
      dfs,
    );
    expect(res.exhausted).toBe(true);
    expect(res.failure).toBeNull();
  });
});
