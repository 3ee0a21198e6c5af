import { Cell } from '@spf/machine';
import { activeRecorder } from './schedule-debug.js';
import { studentLocation } from './student-module.js';

// The schedule debugger's probes. They find where a CPU stands in the student's code by looking at the
// JavaScript stack when student code calls into the kernel: a kernel function student code imports
// (`rmw`, `block`, `cpuRelax`, ...) or a method of a cell in the state it was handed (`sequence.load()`).
// Outside a debug replay each probe is one null check, and no probe ever yields: the machine sees the
// same effects, so the replay takes the same steps as the run that failed.

/** How a kernel call's argument is named in the debugger (`rmw(sem.count)`). */
function argText(a: unknown): string {
  if (typeof a === 'object' && a !== null && 'label' in a) return String((a as { label: unknown }).label);
  if (typeof a === 'string') return JSON.stringify(a.length > 24 ? `${a.slice(0, 23)}…` : a);
  if (typeof a === 'number' || typeof a === 'boolean') return String(a);
  if (typeof a === 'function') return 'ƒ';
  return '…';
}

function probe(call: string, args: readonly unknown[]): void {
  const rec = activeRecorder();
  if (rec === null) return;
  rec.probe(`${call}(${args.map(argText).join(', ')})`, studentLocation(new Error()));
}

const isGeneratorFunction = (f: unknown): f is (...a: unknown[]) => Generator =>
  typeof f === 'function' && f.constructor?.name === 'GeneratorFunction';

/**
 * @spf/machine's namespace as student code sees it: the same exports, except that each kernel function
 * (a generator function such as `rmw` or `block`) first tells an active debug replay which student line
 * called it. The wrapper calls the original at once and returns its generator, so nothing else changes.
 */
export function probedNamespace(ns: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(ns)) {
    if (!isGeneratorFunction(value)) {
      out[name] = value;
      continue;
    }
    const f = value as (a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) => Generator;
    // Five parameters cover every kernel function @spf/machine exports (missing ones are undefined, as in
    // a call without them); no rest array per call, which lab explorations make millions of.
    out[name] = {
      [name](a?: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown) {
        if (activeRecorder() !== null) probe(name, [a, b, c, d, e].slice(0, arguments.length));
        return f(a, b, c, d, e);
      },
    }[name];
  }
  return Object.freeze(out);
}

const CELL_METHODS = ['load', 'store', 'xchg', 'cmpxchg', 'update', 'fetchAdd', 'addReturn'] as const;

/** A view of `cell` whose operations probe first; its value reads and writes go to the cell itself. */
function probedCell(cell: Cell<unknown>, name: string): Cell<unknown> {
  const props: PropertyDescriptorMap = {
    value: {
      get: () => cell.value,
      set: (v: unknown) => {
        cell.value = v;
      },
    },
  };
  const c = cell as unknown as Record<string, unknown>;
  for (const m of CELL_METHODS) {
    const f = c[m];
    if (typeof f !== 'function') continue;
    props[m] = {
      value: (...args: unknown[]) => {
        probe(`${name}.${m}`, args);
        return (f as (...a: unknown[]) => unknown).apply(cell, args);
      },
    };
  }
  return Object.create(cell, props) as Cell<unknown>;
}

/** Per debug replay, the probed view of each state object handed to student code (identity is kept). */
const views = new WeakMap<object, object>();

/** The state object with its cells probed (same view for the same object during a replay). */
function probedView(state: unknown): unknown {
  if (typeof state !== 'object' || state === null) return state;
  const done = views.get(state);
  if (done) return done;
  const copy: Record<string, unknown> = {};
  let cells = 0;
  for (const [k, v] of Object.entries(state)) {
    if (v instanceof Cell) {
      copy[k] = probedCell(v, `${(state as { name?: unknown }).name ?? 'state'}.${k}`);
      cells++;
    } else copy[k] = v;
  }
  const view = cells > 0 ? Object.freeze(copy) : state;
  views.set(state, view);
  return view;
}

/** The first cell of a state object: how the recorder tells which watched lock it belongs to. */
function lockKey(state: unknown): object | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  for (const v of Object.values(state)) if (v instanceof Cell) return v;
  return undefined;
}

/**
 * The student's implementation object `impl` (for example `rwsemPaths`) with each generator method
 * reporting to an active debug replay: the CPU entered that function, and (for lock paths) took or
 * released the lock when it returns. `methods` names the interface's methods (they may be inherited); the
 * object's own properties are carried over too. Outside a debug replay each call goes straight to the student's
 * method, with the student's object as `this`.
 */
export function traceStudent<T extends object>(impl: T, methods: readonly string[]): T {
  const src = impl as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of new Set([...methods, ...Object.keys(src)])) {
    const f = src[name];
    if (typeof f !== 'function') {
      out[name] = f;
      continue;
    }
    out[name] = (...args: unknown[]) => {
      const rec = activeRecorder();
      if (rec === null) return (f as (...a: unknown[]) => unknown).apply(impl, args);
      const gen = (f as (...a: unknown[]) => unknown).apply(impl, args.map(probedView));
      if (typeof gen !== 'object' || gen === null || typeof (gen as Generator).next !== 'function')
        return gen;
      return rec.enter(name, lockKey(args[0]), gen as Generator<unknown, unknown, unknown>);
    };
  }
  return out as T;
}
