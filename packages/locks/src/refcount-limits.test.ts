import { exploreInTest, kassert, runSync, type Scenario } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { REFCOUNT_SATURATED, Refcount, RefcountError } from './refcount.js';

/**
 * refcount_t's rules one operation at a time (include/linux/refcount.h): every ordinary step changes the
 * count by exactly one and warns about nothing, and every misuse warns with the kernel's text and parks the
 * count at REFCOUNT_SATURATED. These tests are aimed at mutants of refcount.ts that the race test alone
 * lets through (a boundary off by one, an inverted test, a lost warning).
 */
describe('refcount_t operations and their limits', () => {
  it('read and set go through the counter; set wraps to a 32-bit int like atomic_set', () => {
    const r = new Refcount('r', 3);
    expect(runSync(r.read())).toBe(3);
    runSync(r.set(7));
    expect(runSync(r.read())).toBe(7);
    runSync(r.set(2 ** 32 + 5));
    expect(r.value).toBe(5);
  });

  it('inc adds one and warns about nothing on an ordinary count', () => {
    const r = new Refcount('r', 1);
    runSync(r.inc());
    runSync(r.inc());
    expect(r.value).toBe(3);
    const top = new Refcount('top', 0x7fff_fffe);
    runSync(top.inc()); // reaches INT_MAX: still legal
    expect(top.value).toBe(0x7fff_ffff);
  });

  it('inc on a saturated (negative) count warns "saturated" and keeps it saturated', () => {
    const r = new Refcount('sat', REFCOUNT_SATURATED);
    expect(() => runSync(r.inc())).toThrow(/^refcount_t: saturated; leaking memory: refcount_inc on 'sat'/);
    expect(r.value).toBe(REFCOUNT_SATURATED);
  });

  it('inc and inc_not_zero on -1 warn too (any negative count is a saturated one, even when +1 gives 0)', () => {
    expect(() => runSync(new Refcount('m1', -1).inc())).toThrow(
      /saturated; leaking memory: refcount_inc on 'm1'/,
    );
    expect(() => runSync(new Refcount('m1', -1).incNotZero())).toThrow(
      /saturated; leaking memory: refcount_inc_not_zero on 'm1'/,
    );
  });

  it('inc_not_zero takes a reference on a live count and returns true', () => {
    const r = new Refcount('r', 1);
    expect(runSync(r.incNotZero())).toBe(true);
    expect(r.value).toBe(2);
  });

  it('inc_not_zero past INT_MAX or on a saturated count warns and saturates', () => {
    const max = new Refcount('max', 0x7fff_ffff);
    expect(() => runSync(max.incNotZero())).toThrow(
      /^refcount_t: saturated; leaking memory: refcount_inc_not_zero on 'max'/,
    );
    expect(max.value).toBe(REFCOUNT_SATURATED);
    const sat = new Refcount('sat', REFCOUNT_SATURATED);
    expect(() => runSync(sat.incNotZero())).toThrow(/refcount_inc_not_zero on 'sat'/);
    const almost = new Refcount('almost', 0x7fff_fffe);
    expect(runSync(almost.incNotZero())).toBe(true);
    expect(almost.value).toBe(0x7fff_ffff);
  });

  it('dec_and_test is false above one and true exactly at the last reference', () => {
    const r = new Refcount('r', 3);
    expect(runSync(r.decAndTest())).toBe(false);
    expect(r.value).toBe(2);
    expect(runSync(r.decAndTest())).toBe(false);
    expect(runSync(r.decAndTest())).toBe(true);
    expect(r.value).toBe(0);
  });

  it('dec_and_test on a saturated count warns about an underflow', () => {
    const r = new Refcount('sat', REFCOUNT_SATURATED);
    expect(() => runSync(r.decAndTest())).toThrow(
      /underflow; use-after-free: refcount_dec_and_test on 'sat'/,
    );
    expect(r.value).toBe(REFCOUNT_SATURATED);
  });

  it('dec drops one above one without a warning', () => {
    const r = new Refcount('r', 3);
    runSync(r.dec());
    expect(r.value).toBe(2);
  });

  it('dec to zero warns about a leak; dec from zero warns about an underflow', () => {
    expect(() => runSync(new Refcount('one', 1).dec())).toThrow(
      /^refcount_t: decrement hit 0; leaking memory: refcount_dec on 'one'/,
    );
    const zero = new Refcount('zero', 0);
    expect(() => runSync(zero.dec())).toThrow(
      /^refcount_t: underflow; use-after-free: refcount_dec on 'zero'/,
    );
    expect(zero.value).toBe(REFCOUNT_SATURATED);
  });

  it('the warning is a RefcountError of kind refcount', () => {
    let err: unknown;
    try {
      runSync(new Refcount('z', 0).inc());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RefcountError);
    expect((err as RefcountError).name).toBe('RefcountError');
    expect((err as RefcountError).kind).toBe('refcount');
  });

  it('concurrent inc and inc_not_zero lose no update (each is one atomic RMW), under random and pct', () => {
    const scenario: Scenario = {
      cpus: 3,
      setup(m) {
        const r = new Refcount('shared', 1);
        for (let c = 0; c < 3; c++) {
          m.spawn(c, `getter${c}`, function* () {
            yield* r.inc();
            yield* r.incNotZero();
            yield* r.dec();
          });
        }
        return () => kassert(r.value === 4, `refcount is ${r.value}, expected 4: an update was lost`);
      },
    };
    for (const opts of [
      { policy: 'random', runs: 200, seed: 3 },
      { policy: 'pct', runs: 200, seed: 5, depth: 3 },
    ] as const) {
      expect(exploreInTest(scenario, opts, 'refcount lost update').failure).toBeNull();
    }
  });
});
