import type { MemoryEffect } from './effects.js';

/**
 * A 64-byte coherence unit. Any simulated object that other CPUs can observe owns one (a lock word, a
 * counter, a VMA's sequence count), and physical addresses map onto lines through
 * {@link Machine.physLine}. The machine keeps a MESI-style state per line: which CPU holds it modified or
 * exclusive, and which CPUs share it. The state is reset whenever the line is first touched by a new
 * machine, so an object can be reused across runs.
 */
export class MemoryLine {
  /** Identifier within the current machine, assigned on first access (deterministic per run). */
  id = -1;
  /** Which machine instance the state below belongs to. */
  epoch = -1;
  /** CPU holding the line in M or E state, or -1. */
  owner = -1;
  /** Whether the owner has written it (M) rather than only read it (E). */
  dirty = false;
  /** Bitset of CPUs holding the line in S state; allocated on the first shared read. */
  sharers: Uint32Array | null = null;
  /** Number of bits set in `sharers`. */
  sharerCount = 0;
  /** Simulated time until which an ownership transfer of this line is in flight (serializes RMWs). */
  busyUntil = 0;
  /**
   * Stores and locked RMWs performed on this line so far (by any machine): a pure spin loop on the line
   * needs to run its code again only when this has changed.
   */
  version = 0;
  /** Locked RMWs performed on this line so far (by any machine): a contention figure for benchmarks. */
  rmws = 0;
  private readCache: MemoryEffect | null = null;
  private writeCache: MemoryEffect | null = null;
  private rmwCache: MemoryEffect | null = null;
  /** The label, or null until someone reads the label of a line made by {@link numbered}. */
  private labelText: string | null;
  /** For a line made by {@link numbered}: the label's fixed part and its number (written in hex). */
  private labelPrefix = '';
  private labelNumber = 0;
  /** The address of a line made by {@link physical}, else -1. */
  private physAddr = -1;
  constructor(
    /** Human-readable name shown in traces and failure reports, e.g. `mm->mmap_lock.count`. */
    label: string,
  ) {
    this.labelText = label;
  }

  /**
   * A line labelled `prefix` followed by `n` in hex (`page:0x1a2`), the label written out when first read:
   * most of the lines made per simulated page never appear in a trace or a report.
   */
  static numbered(prefix: string, n: number): MemoryLine {
    const l = new MemoryLine('');
    l.labelText = null;
    l.labelPrefix = prefix;
    l.labelNumber = n;
    return l;
  }

  /** The line of physical memory at `pa` (a multiple of 64), labelled `phys:0x<pa>` (see {@link numbered}). */
  static physical(pa: number): MemoryLine {
    const l = MemoryLine.numbered('phys:0x', pa);
    l.physAddr = pa;
    return l;
  }

  /** The address of a line made by {@link physical}; -1 for any other line. */
  get physicalAddress(): number {
    return this.physAddr;
  }

  /** Human-readable name shown in traces and failure reports, e.g. `mm->mmap_lock.count`. */
  get label(): string {
    if (this.labelText === null) this.labelText = `${this.labelPrefix}${this.labelNumber.toString(16)}`;
    return this.labelText;
  }
  /**
   * The unlabelled read effect on this line, made on first use and then shared (effects are immutable, so
   * one object serves every access; lines that are only ever accessed with labels never make one).
   */
  get readEffect(): MemoryEffect {
    if (this.readCache === null) this.readCache = { kind: 0, line: this };
    return this.readCache;
  }
  /** The unlabelled write effect on this line (see {@link readEffect}). */
  get writeEffect(): MemoryEffect {
    if (this.writeCache === null) this.writeCache = { kind: 1, line: this };
    return this.writeCache;
  }
  /** The unlabelled locked-RMW effect on this line (see {@link readEffect}). */
  get rmwEffect(): MemoryEffect {
    if (this.rmwCache === null) this.rmwCache = { kind: 2, line: this };
    return this.rmwCache;
  }
}

/** One cache line of memory cells: the value an object stores and the line that makes it observable. */
export type LineOwner = { readonly line: MemoryLine };
