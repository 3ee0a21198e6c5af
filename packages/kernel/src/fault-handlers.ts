import { classicFaultHandler, type FaultHandlerFactory } from '@spf/fault-classic';
import { dufourSpf, lespinasseSpf, perVmaLock } from '@spf/fault-spec';

/**
 * The options a fault-handler design takes, as a plain object: `{ specPgtableAlloc: true, checks: {
 * vmSequenceRecheck: false } }`. Each design's factory checks its own options (and throws
 * `FaultSpecConfigError` from @spf/fault-spec for unsafe or contradictory ones); the registry only carries
 * them from the API or the command line to the factory.
 */
export type FaultHandlerOptions = Readonly<Record<string, unknown>>;

/** One named fault handler `boot()`, `spf replay|run --fault-handler` and the benchmarks can choose. */
export interface FaultHandlerEntry {
  /** The name on the command line and in `SPF_FAULT_HANDLER` (`classic`, `dufour`, `lespinasse`, `pervma`). */
  readonly name: string;
  /** One line for the usage text and reports. */
  readonly description: string;
  /** Builds the factory `boot({ faultHandler })` takes from the design's options. */
  create(options: FaultHandlerOptions): FaultHandlerFactory;
}

/** A fault-handler name that is not in {@link FAULT_HANDLERS}. */
export class UnknownFaultHandlerError extends Error {
  override readonly name = 'UnknownFaultHandlerError';
  constructor(
    /** The name asked for. */
    readonly handler: string,
    /** The names that exist. */
    readonly known: readonly string[],
  ) {
    super(`unknown fault handler ${JSON.stringify(handler)}; choose one of ${known.join(', ')}`);
  }
}

/** Options given to a handler that takes none, or a `--spec-option` that is not `key=value`. */
export class FaultHandlerOptionError extends Error {
  override readonly name = 'FaultHandlerOptionError';
}

/**
 * Registers a design whose factory takes an options object: `designEntry('dufour', '...', dufourSpf)`.
 * The options reach the factory as given; the factory validates them.
 */
export function designEntry<O>(
  name: string,
  description: string,
  factory: (options?: O) => FaultHandlerFactory,
): FaultHandlerEntry {
  return {
    name,
    description,
    create: (options) => factory(Object.keys(options).length === 0 ? undefined : (options as O)),
  };
}

const classicEntry: FaultHandlerEntry = {
  name: 'classic',
  description: 'every fault under mmap_lock (arch/x86/mm/fault.c, the default)',
  create(options) {
    const keys = Object.keys(options);
    if (keys.length > 0) {
      throw new FaultHandlerOptionError(
        `the classic fault handler takes no options, got ${keys.join(', ')}; drop them or choose a speculative handler`,
      );
    }
    return classicFaultHandler;
  },
};

/**
 * Every fault handler by name, classic first. Each speculative design of @spf/fault-spec is one line
 * here (`designEntry('dufour', ..., dufourSpf)`), and from then on `spf replay|run --fault-handler`, the
 * kernel test matrix (`SPF_FAULT_HANDLER`, `npm run test:handlers`) and the benchmarks in bench/ offer it.
 */
export const FAULT_HANDLERS: readonly FaultHandlerEntry[] = [
  classicEntry,
  designEntry('dufour', "Dufour's speculative page fault, SPF v12 (2019)", dufourSpf),
  designEntry('lespinasse', "Lespinasse's mmap_seq speculative page fault (2021-22)", lespinasseSpf),
  designEntry('pervma', 'per-VMA locks of Linux 6.4, lock_vma_under_rcu()', perVmaLock),
];

/** The handler names of a registry (default {@link FAULT_HANDLERS}), classic first. */
export function faultHandlerNames(handlers: readonly FaultHandlerEntry[] = FAULT_HANDLERS): string[] {
  return handlers.map((h) => h.name);
}

/**
 * The factory of the handler called `name` in `handlers` (default {@link FAULT_HANDLERS}), built with
 * `options` (default none).
 *
 * @throws UnknownFaultHandlerError if no handler has that name (the message lists the known ones)
 * @throws FaultHandlerOptionError if the handler takes no options and some were given
 * @throws FaultSpecConfigError (from the design's factory) for unsafe or contradictory options
 */
export function faultHandlerByName(
  name: string,
  options: FaultHandlerOptions = {},
  handlers: readonly FaultHandlerEntry[] = FAULT_HANDLERS,
): FaultHandlerFactory {
  const entry = handlers.find((h) => h.name === name);
  if (entry === undefined) throw new UnknownFaultHandlerError(name, faultHandlerNames(handlers));
  return entry.create(options);
}

/**
 * Parses `--spec-option` texts into a {@link FaultHandlerOptions} object. Each text is `key=value`; the
 * value `true`/`false` is a boolean, a decimal integer is a number, anything else a string. A key with a
 * dot sets a member of a nested object at the FIRST dot only, so `checks.vmSequenceRecheck=false` gives
 * `{ checks: { vmSequenceRecheck: false } }` and `checks.vmaStartWrite.mprotect=false` gives
 * `{ checks: { 'vmaStartWrite.mprotect': false } }` (the designs' check names may contain dots).
 *
 * @throws FaultHandlerOptionError for a text without `=`, an empty key, or a key given twice
 */
export function parseSpecOptions(texts: readonly string[]): FaultHandlerOptions {
  const out: Record<string, unknown> = {};
  for (const text of texts) {
    const eq = text.indexOf('=');
    const key = eq < 0 ? '' : text.slice(0, eq);
    const dot = key.indexOf('.');
    const [outer, inner] = dot < 0 ? [key, undefined] : [key.slice(0, dot), key.slice(dot + 1)];
    if (eq < 0 || outer === '' || inner === '') {
      throw new FaultHandlerOptionError(
        `--spec-option expects key=value (for example specPgtableAlloc=true or checks.ptlTrylock=false), got ${JSON.stringify(text)}`,
      );
    }
    const raw = text.slice(eq + 1);
    const value =
      raw === 'true' ? true : raw === 'false' ? false : /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
    const twice = () =>
      new FaultHandlerOptionError(`--spec-option ${key} is given twice; give each option once`);
    if (inner === undefined) {
      if (key in out) throw twice();
      out[key] = value;
      continue;
    }
    const existing = out[outer];
    if (existing !== undefined && (typeof existing !== 'object' || existing === null)) throw twice();
    const nested = (existing ?? {}) as Record<string, unknown>;
    if (inner in nested) throw twice();
    nested[inner] = value;
    out[outer] = nested;
  }
  return out;
}
