/** A module namespace as student code sees it. */
export type Namespace = Readonly<Record<string, unknown>>;

/**
 * The constants of a module namespace (numbers, bigints, strings, booleans), frozen: what student code may
 * import from a package that also holds an answer. A package like @spf/pagetable is both the lab's target
 * and the home of a correct walk (`referenceWalk`, the MMU's own walk, `explainWalk`); functions, classes
 * and objects could compute the answer, constants cannot. Types are erased before loading, so every
 * `import type` still works.
 */
export function constantsOf(ns: Namespace): Namespace {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(ns)) {
    const t = typeof value;
    if (t === 'number' || t === 'bigint' || t === 'string' || t === 'boolean') out[name] = value;
  }
  return Object.freeze(out);
}

/** The names of a namespace's exports that student code may not import, for error messages. */
export function withheldNames(full: Namespace, allowed: Namespace): string[] {
  return Object.keys(full).filter((k) => !(k in allowed));
}

/**
 * The constants of a namespace plus the named functions `names`, frozen: for a package that holds an answer
 * and also helpers a lab's code is written with (Lab 3's @spf/fault-classic). Throws if a name is missing,
 * so a renamed helper is noticed where the lab is defined.
 */
export function pick(ns: Namespace, names: readonly string[]): Namespace {
  const out: Record<string, unknown> = { ...constantsOf(ns) };
  for (const n of names) {
    if (!(n in ns)) throw new Error(`allowed import '${n}' is not exported by the package`);
    out[n] = ns[n];
  }
  return Object.freeze(out);
}

/**
 * A namespace without the named exports, frozen: for a package whose other exports cannot reach the answer
 * (Lab 5's @spf/vma holds `vmaStartRead` and `vmaStartWrite`). Throws if a name is missing, so a renamed
 * export is noticed where the lab is defined.
 */
export function omit(ns: Namespace, names: readonly string[]): Namespace {
  const out: Record<string, unknown> = { ...ns };
  for (const n of names) {
    if (!(n in ns)) throw new Error(`withheld import '${n}' is not exported by the package`);
    delete out[n];
  }
  return Object.freeze(out);
}
