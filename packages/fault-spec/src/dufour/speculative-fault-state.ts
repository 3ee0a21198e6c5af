import type { MmStruct, VmArea } from '@spf/vma';
import type { DufourCounters } from './dufour-counters.js';
import type { DufourChecks } from './dufour-checks.js';

/**
 * What one speculative fault of Dufour's SPF carries besides the `vm_fault`: the VMA it holds, the
 * `vm_sequence` value it validates against (`vmf->sequence`), what its page walk found (`vmf->pmd`,
 * `vmf->orig_pmd`, the PTE pointer), and the switches and counters of its handler.
 */
export interface SpeculativeFaultState {
  readonly mm: MmStruct;
  readonly address: number;
  readonly checks: DufourChecks;
  readonly counters: DufourCounters;
  vma: VmArea;
  /** `vmf->sequence`: the vm_sequence snapshot. */
  seq: number;
  /** The PMD entry pointer the walk reached. */
  pmdp: number;
  /** `vmf->orig_pmd`. */
  origPmd: bigint;
  /** The PTE pointer in the table the walk found. */
  ptep: number;
  /** `vmf->orig_pte`. */
  origPte: bigint;
}
