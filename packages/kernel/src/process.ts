import { TaskFaultCounters } from '@spf/fault-classic';
import { type Task, WaitQueue } from '@spf/machine';
import type { PageTables } from '@spf/pagetable';
import type { MmStruct } from '@spf/vma';
import { FdTable } from './fd-table.js';
import type { SignalInfo, SignalName } from './signals.js';

/** How a process ended. */
export type ExitStatus =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'killed'; readonly signal: SignalInfo };

/** A thread of a simulated process: one machine task with its own fault counters. */
export class Thread {
  /** `min_flt` / `maj_flt` of this thread (`task_struct`). */
  readonly counters = new TaskFaultCounters();
  /** The machine task that runs it (set when it is spawned). */
  task: Task | null = null;
  /** The thread has finished. */
  done = false;

  constructor(
    readonly tid: number,
    readonly process: Process,
    /** The CPU the thread runs on (threads do not migrate). */
    readonly cpu: number,
  ) {}
}

/** A simulated process: an address space (`mm_struct` and its page tables), threads and signal state. */
export class Process {
  readonly threads: Thread[] = [];
  /** Signals the program catches (`sigaction` with a handler); others kill the process. */
  readonly caught = new Set<SignalName>();
  /** Set once the process is dying; its threads stop at their next access or syscall. */
  exiting: string | null = null;
  /**
   * `fatal_signal_pending()` for any of its threads: the process is dying. The only signals a thread can
   * have pending while it faults are fatal ones. One function per process, handed to every fault.
   */
  readonly fatalSignalPending = (): boolean => this.exiting !== null;
  /** The signal that killed the process, once one did. */
  killedBy: SignalInfo | null = null;
  /** The code passed to `exit()`. */
  exitCode = 0;
  /** Set when the last thread ended and the address space was torn down. */
  status: ExitStatus | null = null;
  /** Its parent collected the exit status with `wait()` (the zombie was reaped). */
  reaped = false;
  /** Woken when the process exits (`wait4`). */
  readonly exitWait: WaitQueue;
  /** Fault counts of threads that already ended (`signal->cmin_flt`-like accumulation for RUSAGE_SELF). */
  deadMinflt = 0;
  deadMajflt = 0;
  /** Live threads. */
  live = 0;

  constructor(
    readonly pid: number,
    readonly name: string,
    readonly mm: MmStruct,
    readonly parent: Process | null,
    /** The file descriptors (`files_struct`): a fresh table, or the parent's copy after fork. */
    readonly files: FdTable = new FdTable(),
  ) {
    this.exitWait = new WaitQueue(`wait4(${pid})`);
    this.exitWait.describe = () => `process ${pid} (${name}) has not exited`;
  }

  /** The address space's page tables: `mm.pgd` (Linux's `current->mm->pgd`), not a copy of its own. */
  get pt(): PageTables {
    return this.mm.pgd;
  }

  /** getrusage(RUSAGE_SELF): minor and major faults of every thread, live or ended. */
  rusage(): { minflt: number; majflt: number } {
    let minflt = this.deadMinflt;
    let majflt = this.deadMajflt;
    for (const t of this.threads) {
      if (t.done) continue;
      minflt += t.counters.minflt;
      majflt += t.counters.majflt;
    }
    return { minflt, majflt };
  }

  toString(): string {
    return `${this.name}[${this.pid}]`;
  }
}
