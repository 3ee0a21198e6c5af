import { type Effect, EffectKind, type Kernel } from './effects.js';

/**
 * A kernel function call the machine runs itself: what `yield* call(f(x))` yields once. The machine keeps the
 * caller's generator on the task's call stack and resumes `gen` directly until it returns, then resumes the
 * caller with the return value (or throws into it what `gen` threw). Every effect `gen` yields then travels
 * from `gen` to the machine and back, instead of through each generator frame between the task's root and
 * `gen` (a `yield*` resumes every delegating frame for every effect that passes through it).
 *
 * The object is its own iterator and its own iterator result, so a call allocates nothing else: to the
 * calling generator's `yield*` it first answers `{ value: this, done: false }` (which the generator yields,
 * and the machine recognises by its kind), then `{ value: <the callee's return value>, done: true }`.
 */
export class CallEffect<T = unknown> {
  readonly kind = EffectKind.Call;
  /** The iterator result's value: the call itself until the callee returned, then its return value. */
  value: unknown = this;
  /** The iterator result's `done`. */
  done = false;
  private started = false;

  constructor(
    /** The callee: a started-to-be generator of kernel code. */
    readonly gen: Kernel<T>,
  ) {}

  [Symbol.iterator](): this {
    return this;
  }

  next(v?: unknown): this {
    if (!this.started) {
      this.started = true;
      return this;
    }
    this.value = v;
    this.done = true;
    return this;
  }

  return(v?: unknown): this {
    this.value = v;
    this.done = true;
    return this;
  }

  /**
   * The callee threw `err`: it goes on in the caller, at its `yield* call(...)`. The error's host stack was
   * captured in the callee, whose callers were not on the JavaScript stack (the machine resumed it
   * directly); here, inside the caller's `yield*`, they are, so their frames are appended to it and a failure
   * report still names every kernel function between the task and the throw.
   */
  throw(err: unknown): never {
    if (err instanceof Error && typeof err.stack === 'string') appendCallers(err);
    throw err;
  }
}

/** Marks the stack lines of the machine's own resumption, where a callee's stack stops being kernel code. */
const RESUME_FRAME = 'resumeCalls';

function appendCallers(err: Error): void {
  const here = new Error().stack ?? '';
  const own = err.stack!.split('\n');
  const cut = own.findIndex((l) => l.includes(RESUME_FRAME));
  // `here` starts with "Error", this function and CallEffect.throw: the caller's frames follow.
  const callers = here.split('\n').slice(3);
  err.stack = [...(cut >= 0 ? own.slice(0, cut) : own), ...callers].join('\n');
}

/**
 * Calls the kernel function `gen` through the machine's trampoline: `const v = yield* call(f(x))` means what
 * `const v = yield* f(x)` means (the same effects in the same order, the same value, exceptions, `finally`
 * blocks and failure-report stack), but every effect `f` yields reaches the machine without resuming the
 * frames above it. Use it where a call leads to many effects deep below (the fault path's spine); a plain
 * `yield*` stays cheaper for a helper that yields once or twice. Code run by {@link runSync} or a
 * {@link Machine} may use it; a driver of its own must pass its generator through {@link expandCalls}.
 */
export function call<T>(gen: Kernel<T>): Kernel<T> {
  if (gen === null || typeof gen !== 'object' || typeof (gen as { next?: unknown }).next !== 'function') {
    throw new TypeError(
      `call() takes the generator a kernel function returns (call(f(x)), not call(f)); got ${typeof gen === 'function' ? `the function ${(gen as { name?: string }).name || '(anonymous)'}` : String(gen)}`,
    );
  }
  return new CallEffect(gen) as unknown as Kernel<T>;
}

/** A generator and the callers waiting for it: the call stack of a task or of an interrupt handler. */
export type CallStack = {
  /** The generator running now: the root, or the innermost callee. */
  top: Kernel<unknown>;
  /** The callers of `top`, outermost first (empty while the root runs). */
  readonly callers: Kernel<unknown>[];
};

/**
 * Resumes a call stack with `input` and runs it up to its next effect that is not a {@link CallEffect}:
 * enters callees, returns their values to their callers, and throws what a callee throws into its caller.
 * Returns that effect's iterator result, or the root's `done` result; throws what the root throws.
 */
export function resumeCalls(s: CallStack, input: unknown): IteratorResult<Effect, unknown> {
  const callers = s.callers;
  let g = s.top;
  let throwing = false;
  let arg = input;
  for (;;) {
    let r: IteratorResult<Effect, unknown>;
    try {
      r = throwing ? g.throw(arg) : g.next(arg);
    } catch (e) {
      // The generator threw: the exception goes on in its caller, at its `yield* call(...)`.
      if (callers.length === 0) throw e;
      g = callers.pop()!;
      s.top = g;
      throwing = true;
      arg = e;
      continue;
    }
    throwing = false;
    if (r.done) {
      // The generator returned: its caller goes on with the value.
      if (callers.length === 0) return r;
      g = callers.pop()!;
      s.top = g;
      arg = r.value;
      continue;
    }
    const v = r.value;
    if (v.kind !== EffectKind.Call) return r;
    callers.push(g);
    g = v.gen;
    s.top = g;
    arg = undefined;
  }
}

/**
 * Runs `code` with its {@link call}s performed inside: yields only the effects the machine performs, in the
 * same order. For drivers that watch every effect of some code (a step limit, a recorder), which would
 * otherwise see a call's effect and not the callee's.
 */
export function* expandCalls<T>(code: Kernel<T>): Kernel<T> {
  const s: CallStack = { top: code, callers: [] };
  let input: unknown;
  for (;;) {
    const r = resumeCalls(s, input);
    if (r.done) return r.value as T;
    input = yield r.value;
  }
}
