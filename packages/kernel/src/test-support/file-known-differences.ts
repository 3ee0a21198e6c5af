import type { FaultHandlerOptions } from '../fault-handlers.js';

/** A fault handler of the registry with its design options (`faultHandlerByName(handler, options)`). */
export interface HandlerConfig {
  readonly handler: string;
  readonly options: FaultHandlerOptions;
}

/** A committed host script the simulator matches only under some fault handlers, and why. */
export interface KnownFileDifference {
  /** Where the output first differs under {@link differsUnder}, as `diffReplayOutputs()` names it. */
  readonly firstDiff: string;
  /** What differs there. */
  readonly what: string;
  /** Why, in terms of the designs: which Linux behaviour the differing handlers model and the host does not. */
  readonly cause: string;
  /** Under this handler the simulator prints exactly what the host printed (the conformance tests assert it). */
  readonly matchesUnder: HandlerConfig;
  /** Under each of these the output differs, first at {@link firstDiff} (the tests assert that too). */
  readonly differsUnder: readonly HandlerConfig[];
}

/**
 * The retry after a fault on a PG_readahead page, common to both entries: `do_async_mmap_readahead()` drops
 * the fault's lock to start the next window and the fault returns VM_FAULT_RETRY without VM_FAULT_MAJOR.
 */
const PG_READAHEAD_RETRY =
  'the fault hits a page marked PG_readahead: do_async_mmap_readahead() drops the lock to start readahead and ' +
  'returns VM_FAULT_RETRY without VM_FAULT_MAJOR. Retried under mmap_lock (the classic handler, and every ' +
  'design that takes file faults under mmap_lock), do_user_addr_fault() sets FAULT_FLAG_TRIED and ' +
  'mm_account_fault() counts the fault major. The host (Linux 6.18, per-VMA locks, file VMAs under the VMA ' +
  'lock since 6.7) tries under the VMA lock first, sets FAULT_FLAG_TRIED after that retry only for ' +
  'VM_FAULT_MAJOR, and counts it minor: the per-VMA-lock design with fileVmas models that.';

/**
 * Committed host scripts (conformance/host-file-outputs/) whose output depends on how the fault handler
 * takes file faults: the default run (classic handler, mmap_lock only) differs from the host, the
 * configuration the host runs matches. host-file-outputs.test.ts asserts both sides for every entry;
 * conformance.test.ts runs each on the host now and compares it with the matching configuration.
 */
export const KNOWN_FILE_DIFFERENCES: Readonly<Record<string, KnownFileDifference>> = {
  'gen-53.script': {
    firstDiff: 'op 42 (line 43): `touch 23 w`',
    what: 'a private write to a cached file page (PG_readahead from an earlier read): host minor, simulator major',
    cause:
      `${PG_READAHEAD_RETRY} The VMA has no anon_vma yet: Linux 6.10's vmf_anon_prepare() prepares it under ` +
      'mmap_read_trylock() and goes on under the VMA lock; 6.7 to 6.9 (vmfAnonPrepareTrylock: false) first ' +
      'retried under mmap_lock, so the PG_readahead retry came under mmap_lock and counted major.',
    matchesUnder: { handler: 'pervma', options: { fileVmas: true } },
    differsUnder: [
      { handler: 'classic', options: {} },
      { handler: 'pervma', options: {} },
      { handler: 'pervma', options: { fileVmas: true, vmfAnonPrepareTrylock: false } },
    ],
  },
  'readahead-async.script': {
    firstDiff: 'op 13 (line 15): `touch 2512 r`',
    what: 'a read fault on the PG_readahead page of the window: host minor, simulator major',
    cause: PG_READAHEAD_RETRY,
    matchesUnder: { handler: 'pervma', options: { fileVmas: true } },
    differsUnder: [
      { handler: 'classic', options: {} },
      { handler: 'pervma', options: {} },
    ],
  },
  'readahead-large-folio.script': {
    firstDiff: 'op 5 (line 10): `touch 2512 r`',
    what: 'a read fault on the PG_readahead page of the window: host minor, simulator major',
    cause: PG_READAHEAD_RETRY,
    matchesUnder: { handler: 'pervma', options: { fileVmas: true } },
    differsUnder: [
      { handler: 'classic', options: {} },
      { handler: 'pervma', options: {} },
    ],
  },
  'readahead-large-folio-eof.script': {
    firstDiff: 'op 5 (line 9): `touch 2512 r`',
    what: 'a read fault on the PG_readahead page of the window: host minor, simulator major',
    cause: PG_READAHEAD_RETRY,
    matchesUnder: { handler: 'pervma', options: { fileVmas: true } },
    differsUnder: [
      { handler: 'classic', options: {} },
      { handler: 'pervma', options: {} },
    ],
  },
};

/** `pervma {"fileVmas":true}`: a handler configuration as test names print it. */
export function describeHandlerConfig(c: HandlerConfig): string {
  return Object.keys(c.options).length === 0 ? c.handler : `${c.handler} ${JSON.stringify(c.options)}`;
}

/**
 * The `generateScript` options of the corpus's `gen-<seed>.script` files (seeds 1 to 60): small windows
 * and files, so files, VMAs and touches keep meeting.
 */
export const FILE_CORPUS_OPTIONS = { files: 3, window: 32, ops: 60, maxFilePages: 24 } as const;
