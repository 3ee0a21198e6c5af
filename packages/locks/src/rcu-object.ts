import { type Kernel, MemoryLine, UseAfterFreeError, readEffect, writeEffect } from '@spf/machine';

/** Anything that can be freed through RCU: it is poisoned when its grace period ends. */
export interface Poisonable {
  poison(reason: string): void;
}

/**
 * A KASAN-like object: it records when it was freed (poisoned), and every checked access afterwards
 * stops the run with a {@link UseAfterFreeError} that says who freed it. Extend it (or use
 * {@link RcuBox}) for RCU-protected structures so a reader that outlives its read-side section is caught.
 * Freeing it twice is reported too.
 */
export class RcuObject implements Poisonable {
  readonly line: MemoryLine;
  private freedBy: string | null = null;

  constructor(
    readonly label: string,
    line?: MemoryLine,
  ) {
    this.line = line ?? new MemoryLine(label);
  }

  /** Marks the object freed. Freeing it again is a double free. */
  poison(reason: string): void {
    if (this.freedBy !== null) {
      throw new UseAfterFreeError(
        `double free of '${this.label}': already freed (${this.freedBy}), freed again (${reason})`,
      );
    }
    this.freedBy = reason;
  }

  /** Whether it has been freed. */
  get isPoisoned(): boolean {
    return this.freedBy !== null;
  }

  /** Who freed it, or null. */
  get poisonReason(): string | null {
    return this.freedBy;
  }

  /** Throws {@link UseAfterFreeError} if the object was freed (no effect; pair it with an access). */
  checkAlive(what = 'access'): void {
    if (this.freedBy !== null) {
      throw new UseAfterFreeError(
        `${what} of '${this.label}' after it was freed (${this.freedBy}); a reader used it past rcu_read_unlock, or it was freed without waiting for a grace period`,
      );
    }
  }

  /** A checked load from the object: a read of its line, then the poison check. */
  *touch(what = 'read'): Kernel<void> {
    yield readEffect(this.line);
    this.checkAlive(what);
  }
}

/** An {@link RcuObject} holding one value, read and written with checked accesses. */
export class RcuBox<T> extends RcuObject {
  constructor(
    private value: T,
    label: string,
    line?: MemoryLine,
  ) {
    super(label, line);
  }

  /** A checked load of the value. */
  *get(): Kernel<T> {
    yield readEffect(this.line);
    this.checkAlive('read');
    return this.value;
  }

  /** A checked store of the value. */
  *set(v: T): Kernel<void> {
    yield writeEffect(this.line);
    this.checkAlive('write');
    this.value = v;
  }

  /** The value without an effect or check (for final checks in tests). */
  peek(): T {
    return this.value;
  }
}
