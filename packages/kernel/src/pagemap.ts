import { ptePfn, ptePresent } from '@spf/pagetable';
import type { Process } from './process.js';
import type { PageState } from './replay/observation.js';
import type { System } from './system.js';

export type { PageState };

/**
 * What /proc/PID/pagemap reports for the page at `addr` (fs/proc/task_mmu.c `pte_to_pagemap_entry()`),
 * reduced to the replay format's letters: `.` no present PTE; `Z` the shared zero page; `A` a private
 * anonymous page; `F` a page-cache page, which includes shared anonymous (shmem) pages (PM_FILE). A
 * PROT_NONE PTE counts as present, as `pte_present()` says. Reads the page tables without machine effects.
 */
export function pageStateAt(system: System, proc: Process, addr: number): PageState {
  const steps = proc.pt.lookup(addr);
  const last = steps[steps.length - 1];
  if (last === undefined || last.level !== 1 || !ptePresent(last.entry)) return '.';
  const pfn = ptePfn(last.entry);
  if (pfn === system.mem.zeroPfn) return 'Z';
  return system.mem.page(pfn).test('anon') ? 'A' : 'F';
}
