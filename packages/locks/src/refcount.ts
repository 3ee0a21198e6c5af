import { AtomicCell, type Kernel, KernelFault, type MemoryLine } from '@spf/machine';
import { current, describeCurrent } from './current.js';

/** `REFCOUNT_SATURATED`: INT_MIN / 2, where a misused refcount is parked so it never reaches 0 again. */
export const REFCOUNT_SATURATED = -(2 ** 30);

/** A refcount_t warning (`refcount_warn_saturate()` in lib/refcount.c). Kind `refcount`. */
export class RefcountError extends KernelFault {
  override name = 'RefcountError';
  constructor(message: string) {
    super('refcount', message);
  }
}

type Saturation = 'add-not-zero-ovf' | 'add-ovf' | 'add-uaf' | 'sub-uaf' | 'dec-leak';
const MESSAGES: Record<Saturation, string> = {
  'add-not-zero-ovf': 'saturated; leaking memory',
  'add-ovf': 'saturated; leaking memory',
  'add-uaf': 'addition on 0; use-after-free',
  'sub-uaf': 'underflow; use-after-free',
  'dec-leak': 'decrement hit 0; leaking memory',
};

/** 32-bit signed wrap-around, as the C `int` arithmetic of atomic_t. */
const i32 = (v: number): number => v | 0;

/**
 * `refcount_t` (include/linux/refcount.h, lib/refcount.c): an atomic counter that refuses to wrap. An
 * increment from 0 (the object is being freed), an overflow past INT_MAX, or a decrement below 0 parks
 * the counter at {@link REFCOUNT_SATURATED} (so the object leaks instead of being freed twice) and
 * reports the kernel's warning as a {@link RefcountError} naming the refcount and CPU, which stops the run.
 */
export class Refcount {
  readonly refs: AtomicCell;

  constructor(
    readonly name: string,
    initial = 1,
    line?: MemoryLine,
  ) {
    this.refs = new AtomicCell(i32(initial), line ?? name);
  }

  /** `refcount_read()` without an effect, for assertions. */
  get value(): number {
    return this.refs.value;
  }

  /** `refcount_read()`. */
  *read(): Kernel<number> {
    return yield* this.refs.load();
  }

  /** `refcount_set()`. */
  *set(n: number): Kernel<void> {
    yield* this.refs.store(i32(n));
  }

  /** `refcount_inc()`: one locked add; warns on addition to 0 or overflow. */
  *inc(): Kernel<void> {
    // The locked add is AtomicCell.fetchAdd() inlined (its RMW effect, then the update): no frame of its own.
    const refs = this.refs;
    yield refs.line.rmwEffect;
    const old = refs.value;
    refs.value = i32(old + 1);
    if (old === 0) yield* this.saturate('add-uaf', 'refcount_inc');
    else if (old < 0 || i32(old + 1) < 0) yield* this.saturate('add-ovf', 'refcount_inc');
  }

  /** `refcount_inc_not_zero()`: a cmpxchg loop that takes a reference only if one is still held. */
  *incNotZero(): Kernel<boolean> {
    let old = yield* this.refs.load();
    for (;;) {
      if (old === 0) break;
      const seen = yield* this.refs.cmpxchg(old, i32(old + 1));
      if (seen === old) break;
      old = seen;
    }
    if (old < 0 || (old !== 0 && i32(old + 1) < 0))
      yield* this.saturate('add-not-zero-ovf', 'refcount_inc_not_zero');
    return old !== 0;
  }

  /** `refcount_dec_and_test()`: drops a reference; true if it was the last one (free the object now). */
  *decAndTest(): Kernel<boolean> {
    // AtomicCell.fetchAdd(-1) inlined, as in inc().
    const refs = this.refs;
    yield refs.line.rmwEffect;
    const old = refs.value;
    refs.value = old - 1;
    if (old === 1) return true;
    if (old < 0 || old - 1 < 0) yield* this.saturate('sub-uaf', 'refcount_dec_and_test');
    return false;
  }

  /** `refcount_dec()`: drops a reference that must not be the last one. */
  *dec(): Kernel<void> {
    const old = yield* this.refs.fetchAdd(-1);
    if (old <= 1) yield* this.saturate(old === 1 ? 'dec-leak' : 'sub-uaf', 'refcount_dec');
  }

  private *saturate(t: Saturation, op: string): Kernel<never> {
    const before = this.refs.value;
    this.refs.value = REFCOUNT_SATURATED;
    const c = yield* current();
    throw new RefcountError(
      `refcount_t: ${MESSAGES[t]}: ${op} on '${this.name}' by ${describeCurrent(c)} (value ${before} after the operation, now saturated at ${REFCOUNT_SATURATED}); the object's reference counting is unbalanced`,
    );
  }
}
