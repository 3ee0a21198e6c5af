import { Cell, kassert, Machine, runSync, type Scenario } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { Rcu } from './rcu.js';
import { RcuObject } from './rcu-object.js';
import { REFCOUNT_SATURATED, Refcount } from './refcount.js';
import { exploreAll } from './test-support/expect-caught.js';

class Obj extends RcuObject {
  readonly ref = new Refcount('vma->vm_ref', 1, this.line);
}

/** Lookup under RCU + refcount_inc_not_zero racing with the owner dropping the last reference. */
const getPut: Scenario = {
  cpus: 3,
  setup(m) {
    const rcu = new Rcu(m);
    const obj = new Obj('vma');
    const gp = new Cell<Obj | null>(obj, 'mm->vma');
    m.spawn(0, 'owner', function* () {
      yield* gp.store(null);
      if (yield* obj.ref.decAndTest()) yield* rcu.kfreeRcu(obj, 'vma');
    });
    for (let i = 1; i < 3; i++) {
      m.spawn(i, `user${i}`, function* () {
        yield* rcu.readLock();
        const p = yield* gp.load();
        const got = p !== null && (yield* p.ref.incNotZero());
        yield* rcu.readUnlock();
        if (p && got) {
          yield* p.touch('use');
          if (yield* p.ref.decAndTest()) yield* rcu.kfreeRcu(p, 'vma');
        }
      });
    }
    return () => {
      kassert(obj.isPoisoned, 'the object leaked');
      kassert(obj.ref.value === 0, `refcount ${obj.ref.value}`);
    };
  },
};

describe('Refcount', () => {
  it('get/put racing with the final put frees exactly once, never under a user (random, pct, dfs)', () => {
    exploreAll(
      getPut,
      'get/put racing with the final put frees exactly once, never under a user (random, pct, dfs)',
    );
  });

  it('inc_not_zero fails on 0 without a warning', () => {
    const r = new Refcount('r', 0);
    expect(runSync(r.incNotZero())).toBe(false);
    expect(r.value).toBe(0);
  });

  it('reports an underflow naming the refcount and CPU, and saturates', () => {
    const m = new Machine({ cpus: 2 });
    const r = new Refcount('page->_refcount', 1);
    m.spawn(1, 'putter', function* () {
      expect(yield* r.decAndTest()).toBe(true);
      yield* r.decAndTest();
    });
    const res = m.run();
    expect(res.failure?.kind).toBe('refcount');
    expect(res.failure?.message).toMatch(
      /underflow; use-after-free: refcount_dec_and_test on 'page->_refcount' by task 'putter' on CPU 1/,
    );
    expect(r.value).toBe(REFCOUNT_SATURATED);
  });

  it('reports an increment from 0 and an overflow past INT_MAX', () => {
    expect(() => runSync(new Refcount('a', 0).inc())).toThrow(
      /addition on 0; use-after-free: refcount_inc on 'a'/,
    );
    const big = new Refcount('b', 0x7fffffff);
    expect(() => runSync(big.inc())).toThrow(/saturated; leaking memory/);
    expect(big.value).toBe(REFCOUNT_SATURATED);
    expect(() => runSync(new Refcount('c', 1).dec())).toThrow(/decrement hit 0; leaking memory/);
  });
});
