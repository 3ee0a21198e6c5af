import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import type { Current } from './current.js';
import { defaultLockdep, Lockdep, LockdepError, type LockdepMap, resolveLockdep } from './lockdep.js';

/** The validator's API driven directly, one rule at a time (kernel/locking/lockdep.c, simplified). */
/** One lock instance per name (lockdep releases by instance). */
const maps = new Map<string, LockdepMap>();
function lock(name: string, lockClass: string, waitKind: 'spin' | 'sleep'): LockdepMap {
  const key = `${waitKind}:${name}:${lockClass}`;
  let m = maps.get(key);
  if (m === undefined) {
    m = { name, lockClass, waitKind };
    maps.set(key, m);
  }
  return m;
}
const spin = (name: string, lockClass = name): LockdepMap => lock(name, lockClass, 'spin');
const sleep = (name: string): LockdepMap => lock(name, name, 'sleep');
let nextTask = 0;
function task(cpu = 0, preemptCount = 0): Current {
  return { cpu, task: { name: `t${nextTask++}`, preemptCount } as unknown as Current['task'] };
}

describe('lockdep API', () => {
  it('records an edge per nesting, lists held locks oldest first, and reset forgets everything', () => {
    const ld = new Lockdep();
    const c = task();
    const [a, b, d] = [spin('a'), spin('b'), spin('d')];
    ld.acquire(a, c);
    ld.acquire(b, c);
    ld.acquire(d, c);
    expect(ld.heldBy(c)).toEqual(['a', 'b', 'd']);
    expect(ld.edgeCount).toBe(3); // a->b, a->d, b->d
    expect([ld.hasDependency('a', 'b'), ld.hasDependency('b', 'd'), ld.hasDependency('a', 'd')]).toEqual([
      true,
      true,
      true,
    ]);
    expect(ld.hasDependency('d', 'a')).toBe(false);
    ld.release(b, c);
    expect(ld.heldBy(c)).toEqual(['a', 'd']);
    ld.release(d, c);
    ld.acquire(b, c); // a -> b again: nothing new
    expect(ld.edgeCount).toBe(3);
    ld.reset();
    expect(ld.edgeCount).toBe(0);
    expect(ld.heldBy(c)).toEqual([]);
  });

  it('keeps held locks per task, and per CPU outside a task', () => {
    const ld = new Lockdep();
    const t1 = task(0);
    const t2 = task(0);
    ld.acquire(spin('a'), t1);
    expect(ld.heldBy(t2)).toEqual([]);
    const idle: Current = { cpu: 3, task: null };
    ld.acquire(spin('b'), idle);
    expect(ld.heldBy({ cpu: 3, task: null })).toEqual(['b']);
    expect(ld.heldBy({ cpu: 2, task: null })).toEqual([]);
  });

  it('when disabled, tracks and reports nothing', () => {
    const ld = new Lockdep();
    ld.enabled = false;
    const c = task(0, 5);
    const a = spin('a');
    ld.acquire(a, c);
    ld.acquire(a, c);
    expect(ld.heldBy(c)).toEqual([]);
    expect(() => ld.release(spin('never'), c)).not.toThrow();
    expect(() => ld.mightSleep('mutex', c, false)).not.toThrow();
    expect(() => ld.downgrade(a, c)).not.toThrow();
    expect(ld.edgeCount).toBe(0);
  });

  it('release drops the most recent acquisition of that lock and names what is held when it is not', () => {
    const ld = new Lockdep();
    const c = task();
    const a = spin('a');
    ld.acquire(a, c);
    ld.acquire(a, c, { subclass: 1 });
    ld.release(a, c);
    ld.release(a, c);
    expect(ld.heldBy(c)).toEqual([]);
    expect(() => ld.release(a, c)).toThrow(/releases 'a' which it does not hold \(held: nothing\)/);
    ld.acquire(spin('x'), c);
    ld.acquire(spin('y'), c);
    expect(() => ld.release(a, c)).toThrow(/\(held: x, y\)/);
  });

  it('a trylock of a class already held is not recursion, and adds no edge', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(spin('a'), c);
    expect(() => ld.acquire(spin('a2', 'a'), c, { trylock: true })).not.toThrow();
    ld.acquire(spin('b'), c, { trylock: true });
    expect(ld.edgeCount).toBe(0);
    expect(ld.heldBy(c)).toEqual(['a', 'a2', 'b']);
    expect(() => ld.acquire(spin('a3', 'a'), c)).toThrow(/recursive locking.*'a3' \(class a\).*holds 'a'/);
  });

  it('subclass 0 is the class itself; another subclass is its own node', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(spin('p'), c, { subclass: 0 });
    expect(() => ld.acquire(spin('q', 'p'), c, { subclass: 0 })).toThrow(/class p\)/);
    const c2 = task();
    ld.acquire(spin('p'), c2);
    ld.acquire(spin('q', 'p'), c2, { subclass: 2 });
    expect(ld.hasDependency('p', 'p/2')).toBe(true);
  });

  it('reports the whole recorded chain of a longer cycle, edge by edge', () => {
    const ld = new Lockdep();
    const t1 = task();
    ld.acquire(spin('A'), t1);
    ld.acquire(spin('B'), t1);
    ld.release(spin('A'), t1);
    const t2 = task();
    const B = spin('B');
    ld.acquire(B, t2);
    ld.acquire(spin('C'), t2);
    const t3 = task();
    ld.acquire(spin('C'), t3);
    let msg = '';
    try {
      ld.acquire(spin('A'), t3);
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/acquires 'A' \(class A\) while holding 'C' \(class C\)/);
    expect(msg).toMatch(/ {2}'A' -> 'B' \('B' taken under 'A' by task 't\d+' on CPU 0\)\n {2}'B' -> 'C'/);
    expect(msg).toMatch(/Take these locks in one global order\.$/);
  });

  it('might_sleep checks hard-irq context, a held spinlock, interrupts off and the preempt count, in that order', () => {
    const ld = new Lockdep();
    const fine = task();
    expect(() => ld.mightSleep('m', fine, true)).not.toThrow();
    expect(() => ld.mightSleep('m', fine, undefined)).not.toThrow();
    const holder = task();
    ld.acquire(sleep('outer mutex'), holder);
    expect(() => ld.mightSleep('m', holder, true)).not.toThrow(); // a sleeping lock held is fine
    ld.acquire(spin('ptl'), holder);
    expect(() => ld.mightSleep('m', holder, false)).toThrow(/while holding spinlock 'ptl'/);
    expect(() => ld.mightSleep('m', task(), false)).toThrow(/'m' with interrupts disabled/);
    expect(() => ld.mightSleep('m', task(0, 2), true)).toThrow(/in atomic context \(preempt count 2/);
    const handler = ld.hardirq(function* () {
      expect(ld.inHardirq(1)).toBe(true);
      expect(ld.inHardirq(0)).toBe(false);
      ld.mightSleep('m', task(1), true);
    });
    expect(() => runSync(handler(1))).toThrow(/takes 'm' in hard-irq context/);
    expect(ld.inHardirq(1)).toBe(false); // left even though the handler threw
  });

  it('hard-irq depth nests', () => {
    const ld = new Lockdep();
    const depth: boolean[] = [];
    const inner = ld.hardirq(function* () {
      depth.push(ld.inHardirq(0));
    });
    const outer = ld.hardirq(function* () {
      yield* inner(0);
      depth.push(ld.inHardirq(0));
    });
    runSync(outer(0));
    expect(depth).toEqual([true, true]);
    expect(ld.inHardirq(0)).toBe(false);
  });

  it('usage: spinning locks get irq-safe in hard irq and irq-unsafe with interrupts on; sleeping locks get neither', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(sleep('mutex'), c, { irqsEnabled: true });
    ld.release(sleep('mutex'), c);
    ld.acquire(spin('off'), c, { irqsEnabled: false });
    ld.release(spin('off'), c);
    ld.acquire(spin('unknown'), c);
    ld.release(spin('unknown'), c);
    const irq = ld.hardirq(function* () {
      const h: Current = { cpu: 0, task: null };
      for (const n of ['mutex', 'off', 'unknown']) {
        ld.acquire(spin(n), h, { irqsEnabled: false });
        ld.release(spin(n), h);
      }
    });
    expect(() => runSync(irq(0))).not.toThrow();
    ld.acquire(spin('x'), c, { irqsEnabled: true });
    ld.release(spin('x'), c);
    const bad = ld.hardirq(function* () {
      ld.acquire(spin('x'), { cpu: 0, task: null });
    });
    expect(() => runSync(bad(0))).toThrow(
      /inconsistent lock state: class x was acquired in hard-irq context by an interrupt on idle CPU 0 and acquired with interrupts enabled by task/,
    );
  });

  it('a class that becomes irq-safe while depending on an irq-unsafe one is reported, and the reverse', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(spin('unsafe'), c, { irqsEnabled: true });
    ld.release(spin('unsafe'), c);
    ld.acquire(spin('later-safe'), c, { irqsEnabled: false });
    ld.acquire(spin('unsafe'), c, { irqsEnabled: false });
    const irq = ld.hardirq(function* () {
      ld.acquire(spin('later-safe'), { cpu: 0, task: null });
    });
    expect(() => runSync(irq(0))).toThrow(
      /class later-safe became irq-safe .* depends on irq-unsafe 'unsafe'/,
    );

    const ld2 = new Lockdep();
    const c2 = task();
    const irq2 = ld2.hardirq(function* () {
      ld2.acquire(spin('safe'), { cpu: 0, task: null });
    });
    runSync(irq2(0));
    ld2.acquire(spin('safe'), c2, { irqsEnabled: false });
    ld2.acquire(spin('later-unsafe'), c2, { irqsEnabled: false });
    ld2.release(spin('later-unsafe'), c2);
    ld2.release(spin('safe'), c2);
    expect(() => ld2.acquire(spin('later-unsafe'), c2, { irqsEnabled: true })).toThrow(
      /class later-unsafe became irq-unsafe .* irq-safe 'safe' .* depends on it/,
    );
  });

  it('a new edge from (something under) an irq-safe class to (something over) an irq-unsafe one is reported', () => {
    const ld = new Lockdep();
    const c = task();
    runSync(
      ld.hardirq(function* () {
        ld.acquire(spin('safe'), { cpu: 0, task: null });
        ld.release(spin('safe'), { cpu: 0, task: null });
      })(0),
    );
    ld.acquire(spin('unsafe'), c, { irqsEnabled: true });
    ld.release(spin('unsafe'), c);
    // safe -> mid (fine: mid is neither), then mid -> unsafe closes safe -> ... -> unsafe.
    ld.acquire(spin('safe'), c, { irqsEnabled: false });
    ld.acquire(spin('mid'), c, { irqsEnabled: false });
    ld.release(spin('mid'), c);
    ld.release(spin('safe'), c);
    ld.acquire(spin('mid'), c, { irqsEnabled: false });
    expect(() => ld.acquire(spin('unsafe'), c, { irqsEnabled: false })).toThrow(
      /irq-safe -> irq-unsafe lock order detected: .* takes class unsafe under mid; irq-safe 'safe' .* irq-unsafe 'unsafe'/,
    );
  });

  /** The message of the LockdepError `f` throws, or '' if it throws none. */
  function report(f: () => void): string {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(LockdepError);
      expect((e as Error).name).toBe('LockdepError');
      return (e as Error).message;
    }
    return '';
  }

  /** Marks `name` irq-safe by taking it in a hard-irq handler on CPU 3 (no task). */
  function takeInHardirq(ld: Lockdep, name: string): void {
    runSync(
      ld.hardirq(function* () {
        ld.acquire(spin(name), { cpu: 3, task: null });
        ld.release(spin(name), { cpu: 3, task: null });
      })(3),
    );
  }

  it('might_sleep outside a task (an interrupt on an idle CPU) has no preempt count to check', () => {
    const ld = new Lockdep();
    expect(report(() => ld.mightSleep('m', { cpu: 1, task: null }, true))).toBe('');
  });

  it('downgrade of a lock the task does not hold is reported even when it holds others', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(sleep('other'), c);
    expect(report(() => ld.downgrade(sleep('mmap_lock'), c))).toMatch(
      /downgrade of 'mmap_lock' by task 't\d+' on CPU 0, which does not hold it for writing/,
    );
  });

  it('an order recorded twice keeps where it was first seen, and a cycle report shows the first path found', () => {
    const ld = new Lockdep();
    const [t1, t2, t3, t4] = [task(), task(), task(), task()];
    // A -> X -> Z and A -> Y -> Z: two paths from A to Z; A -> X is seen again later, by t3.
    for (const [t, a, b] of [
      [t1, 'A', 'X'],
      [t1, 'X', 'Z'],
      [t2, 'A', 'Y'],
      [t2, 'Y', 'Z'],
      [t3, 'A', 'X'],
    ] as const) {
      ld.acquire(spin(a), t);
      ld.acquire(spin(b), t);
      ld.release(spin(b), t);
      ld.release(spin(a), t);
    }
    ld.acquire(spin('Z'), t4);
    const msg = report(() => ld.acquire(spin('A'), t4));
    const who = (t: Current) => `task '${t.task?.name}' on CPU 0`;
    expect(msg.split('\n').slice(1, -1)).toEqual([
      `  'A' -> 'X' ('X' taken under 'A' by ${who(t1)})`,
      `  'X' -> 'Z' ('Z' taken under 'X' by ${who(t1)})`,
    ]);
  });

  it('every class a class was taken under counts when it becomes irq-unsafe, not only the last', () => {
    const ld = new Lockdep();
    takeInHardirq(ld, 'safe');
    const c = task();
    for (const outer of ['safe', 'other']) {
      ld.acquire(spin(outer), c, { irqsEnabled: false });
      ld.acquire(spin('shared'), c, { irqsEnabled: false });
      ld.release(spin('shared'), c);
      ld.release(spin(outer), c);
    }
    expect(report(() => ld.acquire(spin('shared'), c, { irqsEnabled: true }))).toMatch(
      /class shared became irq-unsafe .* irq-safe 'safe' .* depends on it/,
    );
  });

  it('a usage report names where the class first got each usage', () => {
    const ld = new Lockdep();
    const [t1, t2] = [task(1), task(2)];
    for (const t of [t1, t2]) {
      ld.acquire(spin('timer'), t, { irqsEnabled: true });
      ld.release(spin('timer'), t);
    }
    const msg = report(() => takeInHardirq(ld, 'timer'));
    expect(msg).toContain(`acquired with interrupts enabled by task '${t1.task?.name}' on CPU 1`);
    expect(msg).not.toContain(`task '${t2.task?.name}'`);
  });

  it('a class that becomes irq-safe over classes that are not irq-unsafe is fine', () => {
    const ld = new Lockdep();
    const c = task();
    ld.acquire(spin('outer'), c, { irqsEnabled: false });
    ld.acquire(spin('inner'), c, { irqsEnabled: false }); // no usage recorded for inner
    ld.acquire(sleep('sleeper'), c);
    ld.release(sleep('sleeper'), c);
    ld.release(spin('inner'), c);
    ld.release(spin('outer'), c);
    expect(report(() => takeInHardirq(ld, 'outer'))).toBe('');
  });

  it('resolveLockdep: false is none, undefined the default validator, an instance itself', () => {
    const ld = new Lockdep();
    expect(resolveLockdep(false)).toBeNull();
    expect(resolveLockdep(undefined)).toBe(defaultLockdep);
    expect(resolveLockdep(ld)).toBe(ld);
  });
});
