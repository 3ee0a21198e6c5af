import type { Kernel } from './effects.js';
import { MemoryLine } from './memory-line.js';

/**
 * A word of simulated kernel memory: a value plus the {@link MemoryLine} that makes every access to it
 * observable and costed. Several cells may share one line (fields of one struct) by passing the same line.
 *
 * Every method is kernel code (`yield*` it); the value changes at the moment the effect is performed, so a
 * non-atomic `load` then `store` can lose an update to another CPU, exactly as on hardware, while the RMW
 * methods cannot.
 */
export class Cell<T> {
  readonly line: MemoryLine;
  constructor(
    /** The current value. Reading it directly (without an effect) is for checks and reports only. */
    public value: T,
    line: MemoryLine | string,
  ) {
    this.line = typeof line === 'string' ? new MemoryLine(line) : line;
  }
  /** A plain load (`READ_ONCE`). */
  *load(): Kernel<T> {
    yield this.line.readEffect;
    return this.value;
  }
  /** A plain store (`WRITE_ONCE`). */
  *store(v: T): Kernel<void> {
    yield this.line.writeEffect;
    this.value = v;
  }
  /** `xchg`: stores `v` and returns the old value, atomically. */
  *xchg(v: T): Kernel<T> {
    yield this.line.rmwEffect;
    const old = this.value;
    this.value = v;
    return old;
  }
  /** `cmpxchg`: stores `next` if the value equals `expected`; returns the value seen, atomically. */
  *cmpxchg(expected: T, next: T): Kernel<T> {
    yield this.line.rmwEffect;
    const old = this.value;
    if (old === expected) this.value = next;
    return old;
  }
  /** Applies `f` to the value atomically (a locked RMW) and returns the old value. */
  *update(f: (v: T) => T): Kernel<T> {
    yield this.line.rmwEffect;
    const old = this.value;
    this.value = f(old);
    return old;
  }
}

/** A numeric cell with `atomic_t`-style operations. */
export class AtomicCell extends Cell<number> {
  constructor(value: number, line: MemoryLine | string) {
    super(value, line);
  }
  /** `atomic_fetch_add`: adds `d`, returns the old value. */
  *fetchAdd(d: number): Kernel<number> {
    yield this.line.rmwEffect;
    const old = this.value;
    this.value = old + d;
    return old;
  }
  /** `atomic_add_return`. */
  *addReturn(d: number): Kernel<number> {
    yield this.line.rmwEffect;
    this.value += d;
    return this.value;
  }
}
