import { expandCalls, type Kernel } from '@spf/machine';

/** One effect a kernel path yielded, with what `snapshot` read at that moment (before the effect ran on). */
export type RecordedEffect<S> = { kind: unknown; line: unknown; label: unknown; at: S };

/**
 * Runs `code` as its caller would (each effect passed on to the runner), recording every effect it yields
 * together with `snapshot()` taken when it is yielded: a store's new value is not visible yet at its own
 * effect, which is what a reader scheduled at that point would see.
 */
export function* recordEffects<T, S>(
  kernelCode: Kernel<T>,
  snapshot: () => S,
  seen: RecordedEffect<S>[],
): Kernel<T> {
  // Every effect is recorded, those of `yield* call(...)` callees too.
  const code = expandCalls(kernelCode);
  let r = code.next();
  while (!r.done) {
    const e = r.value as { kind: unknown; line?: unknown; label?: unknown };
    seen.push({ kind: e.kind, line: e.line, label: e.label, at: snapshot() });
    r = code.next(yield r.value);
  }
  return r.value;
}
