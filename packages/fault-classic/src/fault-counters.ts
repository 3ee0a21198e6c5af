/**
 * Per-task fault counts, `task_struct`'s `min_flt` and `maj_flt` (what getrusage(2) reports as
 * `ru_minflt` and `ru_majflt`).
 */
export class TaskFaultCounters {
  /** `current->min_flt`: faults completed without I/O. */
  minflt = 0;
  /** `current->maj_flt`: faults that needed I/O, or were retried. */
  majflt = 0;
}

/**
 * System-wide event counters in the style of /proc/vmstat (`enum vm_event_item` in
 * include/linux/vm_event_item.h), for the events the fault path counts.
 */
export class VmStat {
  /** `pgfault`: every fault that was not retried, including failed ones. */
  pgfault = 0;
  /** `pgmajfault`: major faults. */
  pgmajfault = 0;
  /** `pgalloc`-like count of pages the fault path allocated (data pages, not page tables). */
  pgalloc = 0;
  /** Copy-on-write copies made by do_wp_page / do_cow_fault. */
  cowCopies = 0;
  /** Write faults on a private page that reused it in place instead of copying. */
  cowReuses = 0;
  /** Page-table pages the fault path allocated. */
  pgtableAlloc = 0;
  /** Faults that returned VM_FAULT_RETRY and were retried with FAULT_FLAG_TRIED. */
  retries = 0;
  /** Stack expansions done by the fault path. */
  stackExpansions = 0;

  /** The counters as /proc/vmstat-style `name value` lines. */
  toString(): string {
    return Object.entries(this)
      .map(([k, v]) => `${k} ${v}`)
      .join('\n');
  }
}
