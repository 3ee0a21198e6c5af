import { describe, expect, it } from 'vitest';
import { AtomicCell } from './cell.js';
import { EffectKind, type Kernel, localIrqDisable, localIrqEnable, now, sendIpi } from './effects.js';
import { kassert } from './errors.js';
import { runScenario, type Scenario } from './explore.js';
import { Machine } from './machine.js';
import { timed } from './policy/timed.js';
import { policyFingerprints } from './policy-fingerprint.js';
import { runSync } from './run-sync.js';
import { call, expandCalls } from './trampoline.js';

/**
 * `yield* call(f())` must mean exactly `yield* f()`: the same effects in the same order (so every policy sees
 * the same run), the same return value, exceptions caught by the caller, `finally` blocks run, and a failure
 * report whose stack still names the callers. Only the host's work per effect differs.
 */

type Invoke = <T>(g: Kernel<T>) => Kernel<T>;
const plain: Invoke = (g) => g;

/**
 * Three CPUs take a lock-free counter through nested kernel functions three calls deep, one of which catches
 * an exception thrown two levels below it, while CPU 0 sends an IPI whose handler also calls through `how`.
 */
function nestedScenario(how: Invoke): Scenario {
  return {
    name: 'nested calls',
    cpus: 3,
    setup(m) {
      const counter = new AtomicCell(0, 'counter');
      const seen = new AtomicCell(0, 'seen');
      function* leaf(k: number): Kernel<number> {
        const v = yield* counter.load();
        if (k === 2) throw new RangeError(`leaf ${k}`);
        yield* counter.store(v + 1); // a lost update under some interleavings
        return v;
      }
      function* middle(k: number): Kernel<number> {
        let got = -1;
        try {
          got = yield* how(leaf(k));
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
          yield* seen.fetchAdd(1);
        } finally {
          yield* seen.fetchAdd(10);
        }
        return got;
      }
      function* outer(k: number): Kernel<number> {
        const a = yield* how(middle(k));
        const b = yield* how(middle(k + 1));
        return a + b;
      }
      for (let cpu = 0; cpu < 3; cpu++) {
        m.spawn(cpu, `t${cpu}`, function* () {
          const r = yield* how(outer(cpu));
          kassert(r >= -2, `outer returned ${r}`);
          if (cpu === 0) {
            yield* sendIpi([1, 2], function* () {
              yield* how(middle(7));
            });
          }
        });
      }
      return () => kassert(counter.value >= 1, `counter ${counter.value}`);
    },
  };
}

const runWith = (s: Scenario) => (p: Parameters<typeof runScenario>[1]) => runScenario(s, p);

describe('call(): the machine runs the callee directly', () => {
  it('gives every policy exactly the run yield* gives (trace hash, time, steps, schedule)', () => {
    const viaCall = policyFingerprints(runWith(nestedScenario(call)), { dfsRuns: 20 });
    const viaYield = policyFingerprints(runWith(nestedScenario(plain)), { dfsRuns: 20 });
    expect(viaCall).toEqual(viaYield);
    // The scenario does something: the runs are not empty and an IPI handler ran.
    const r = runScenario(nestedScenario(call), timed());
    expect(r.ok).toBe(true);
    expect(r.effects).toBeGreaterThanOrEqual(30);
  });

  it('returns the callee value and passes values into the callee, nested', () => {
    function* add(a: number, b: number): Kernel<number> {
      const t = yield* now();
      return a + b + t * 0;
    }
    function* twice(x: number): Kernel<number> {
      const y = yield* call(add(x, x));
      return yield* call(add(y, 1));
    }
    expect(runSync(call(twice(20)))).toBe(41);
    const m = new Machine({ cpus: 1 });
    const t = m.spawn(0, 't', () => call(twice(5)));
    expect(m.run().ok).toBe(true);
    expect(t.result).toBe(11);
    expect(t.callers).toHaveLength(0);
  });

  it('throws a callee exception into the caller, which can catch it, and runs finally blocks on the way', () => {
    const log: string[] = [];
    function* thrower(): Kernel<void> {
      try {
        yield* now();
        throw new TypeError('deep');
      } finally {
        log.push('thrower finally');
      }
    }
    function* passer(): Kernel<void> {
      try {
        yield* call(thrower());
      } finally {
        log.push('passer finally');
      }
    }
    function* catcher(): Kernel<string> {
      try {
        yield* call(passer());
        return 'not thrown';
      } catch (e) {
        return (e as Error).message;
      }
    }
    expect(runSync(catcher())).toBe('deep');
    expect(log).toEqual(['thrower finally', 'passer finally']);
  });

  it('reports an uncaught exception with a stack that names the callers, not only the function that threw', () => {
    function* innermostThrower(): Kernel<void> {
      yield* now();
      kassert(false, 'invariant broken');
    }
    function* middleCaller(): Kernel<void> {
      yield* call(innermostThrower());
    }
    function* outerCaller(): Kernel<void> {
      yield* now();
      yield* call(middleCaller());
    }
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'task', outerCaller);
    const r = m.run();
    expect(r.failure?.kind).toBe('assertion');
    expect(r.failure?.task).toBe('task');
    const stack = r.failure?.stack ?? '';
    const at = (name: string) => stack.indexOf(name);
    expect(at('innermostThrower')).toBeGreaterThan(0);
    expect(at('middleCaller')).toBeGreaterThan(at('innermostThrower'));
    expect(at('outerCaller')).toBeGreaterThan(at('middleCaller'));
    // The machine's own frames come once, after the last kernel caller, and no helper line is left in between.
    expect(stack.indexOf('resumeCalls')).toBeGreaterThan(at('outerCaller'));
    expect(stack).not.toMatch(/CallEffect\.throw/);
    expect(stack.split('\n').filter((l) => l.trim() === 'Error')).toEqual([]);
  });

  it('keeps every line of a callee stack that was cut short before the machine frames', () => {
    const limit = Error.stackTraceLimit;
    function* shortStackThrower(): Kernel<void> {
      Error.stackTraceLimit = 1;
      const e = new Error('short');
      Error.stackTraceLimit = limit;
      throw e;
    }
    function* shortCaller(): Kernel<string> {
      try {
        yield* call(shortStackThrower());
      } catch (e) {
        return (e as Error).stack ?? '';
      }
      return '';
    }
    try {
      const stack = runSync(shortCaller());
      expect(stack).toMatch(/shortStackThrower/);
      expect(stack).toMatch(/shortCaller/);
    } finally {
      Error.stackTraceLimit = limit;
    }
  });

  it('passes on thrown values that are not errors, and errors without a stack, unchanged', () => {
    const stackless = new Error('no stack');
    Object.defineProperty(stackless, 'stack', { value: undefined, writable: true });
    for (const thrown of ['a string', 42, stackless]) {
      function* throwsIt(): Kernel<void> {
        yield* now();
        throw thrown;
      }
      function* catchesIt(): Kernel<unknown> {
        try {
          yield* call(throwsIt());
        } catch (e) {
          return e;
        }
      }
      expect(runSync(catchesIt())).toBe(thrown);
    }
    expect(stackless.stack).toBeUndefined();
  });

  it('carries an exception thrown by a caller after its callee returned, or while handling a callee exception', () => {
    function* returnsOne(): Kernel<number> {
      return 1; // returns on its first resumption, before any effect
    }
    function* throwsAtOnce(): Kernel<number> {
      throw new RangeError('at once');
    }
    function* throwsAfterReturn(): Kernel<number> {
      const v = yield* call(returnsOne());
      throw new TypeError(`after ${v}`);
    }
    function* rethrows(): Kernel<number> {
      try {
        return yield* call(throwsAtOnce());
      } catch (e) {
        throw new SyntaxError(`wrapped ${(e as Error).message}`);
      }
    }
    function* top(): Kernel<string[]> {
      const got: string[] = [];
      for (const g of [throwsAfterReturn, rethrows]) {
        try {
          yield* call(g());
        } catch (e) {
          got.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
      return got;
    }
    expect(runSync(top())).toEqual(['TypeError: after 1', 'SyntaxError: wrapped at once']);
  });

  it('lets a caller suspended in a call be closed with return(), running its finally block', () => {
    const log: string[] = [];
    function* callee(): Kernel<void> {
      yield* now();
    }
    function* caller(): Kernel<void> {
      try {
        yield* call(callee());
        log.push('not reached');
      } finally {
        log.push('caller finally');
      }
    }
    const g = caller();
    expect(g.next().value?.kind).toBe(EffectKind.Call);
    expect(g.return(undefined)).toEqual({ value: undefined, done: true });
    expect(log).toEqual(['caller finally']);
  });

  it('works inside an interrupt handler, which must still run with interrupts off', () => {
    const m = new Machine({ cpus: 2 });
    const hits = new AtomicCell(0, 'hits');
    function* handlerBody(): Kernel<void> {
      yield* hits.fetchAdd(1);
    }
    m.spawn(0, 'sender', function* () {
      yield* sendIpi([1], () => call(handlerBody()));
    });
    m.spawn(1, 'target', function* () {
      yield* localIrqDisable();
      yield* localIrqEnable();
      yield* hits.load();
    });
    expect(m.run().ok).toBe(true);
    expect(hits.value).toBe(1);
  });

  it('does not grow the host stack with the call depth (a 20,000-deep recursion runs)', () => {
    function* depth(n: number): Kernel<number> {
      if (n === 0) return (yield* now()) * 0;
      return 1 + (yield* call(depth(n - 1)));
    }
    const m = new Machine({ cpus: 1 });
    const t = m.spawn(0, 'deep', () => depth(20_000));
    const r = m.run();
    expect(r.ok).toBe(true);
    expect(t.result).toBe(20_000);
  });
});

describe('call() with bad input', () => {
  it('refuses a function instead of the generator it returns, naming it', () => {
    function* work(): Kernel<void> {}
    expect(() => call(work as unknown as Kernel<void>)).toThrow(
      /call\(\) takes the generator .*call\(f\(x\)\), not call\(f\).*the function work/,
    );
    expect(() => call(undefined as unknown as Kernel<void>)).toThrow(/got undefined/);
    expect(() => call(null as unknown as Kernel<void>)).toThrow(/got null/);
    expect(() => call({} as unknown as Kernel<void>)).toThrow(/got \[object Object\]/);
    expect(() => call(function* () {} as unknown as Kernel<void>)).toThrow(/the function \(anonymous\)/);
  });
});

describe('expandCalls()', () => {
  it('yields the effects of callees itself, in the order the machine would perform them', () => {
    function* inner(): Kernel<number> {
      yield* now();
      yield* localIrqDisable();
      return 3;
    }
    function* outer(): Kernel<number> {
      yield* localIrqEnable();
      const v = yield* call(inner());
      yield* localIrqEnable();
      return v;
    }
    const kinds: number[] = [];
    const g = expandCalls(outer());
    let r = g.next();
    while (!r.done) {
      kinds.push(r.value.kind);
      r = g.next(r.value.kind === EffectKind.Now ? 0 : undefined);
    }
    expect(kinds).toEqual([
      EffectKind.IrqEnable,
      EffectKind.Now,
      EffectKind.IrqDisable,
      EffectKind.IrqEnable,
    ]);
    expect(r.value).toBe(3);
  });
});
