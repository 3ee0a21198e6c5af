import {
  doUserAddrFault,
  type FaultEnv,
  type FaultHandler,
  type FaultHandlerFactory,
  makeFaultEnv,
  VmStat,
} from '@spf/fault-classic';
import { type BlockDeviceOptions, type FilemapRetryPaths, SuperBlock } from '@spf/file-backed';
import { Rcu } from '@spf/locks';
import {
  block,
  type CostModel,
  type Kernel,
  KernelFault,
  Machine,
  type Policy,
  type RunResult,
  wake,
  call,
  readEffect,
  writeEffect,
  delayEffect,
} from '@spf/machine';
import {
  type AccessKind,
  type WalkAccess,
  type CpuFeatures,
  Mmu,
  PAGE_SIZE,
  PF_USER,
  PF_WRITE,
  PhysicalMemory,
  UnsupportedCpuFeatureError,
} from '@spf/pagetable';
import {
  dupMmap,
  Errno,
  exitMmap,
  ForkOutOfMemoryError,
  fail,
  type MmapLockKind,
  MmIds,
  MmStruct,
  mmInvariantProblems,
  ok,
  OvercommitConfigError,
  type OvercommitMode,
  OvercommitPolicy,
  PagetableOps,
  type PageStateReader,
  pageStates,
  type RssCounting,
  type SysResult,
  VM_FILE_RELEASE_MODES,
  type VmFileRelease,
  VmFileReleaseConfigError,
} from '@spf/vma';
import { defaultFaultHandler } from './default-fault-handler.js';
import { type ExitStatus, Process, Thread } from './process.js';
import { ProcessExiting, type SignalInfo, UserSignal } from './signals.js';
import { checkByte, checkUserAddress } from './user-access-error.js';
import { UserContext, type UserProgram } from './user-context.js';

/** How {@link boot} builds a system. Every field is optional. */
export interface BootConfig {
  /** Number of CPUs (default 1). */
  readonly cpus?: number;
  /** Scheduling policy (default `timed()`: discrete-event, for measurements). */
  readonly policy?: Policy;
  /** Seed of the machine (default 1). */
  readonly seed?: number;
  /** Overrides of the machine's cost model (latencies in ns). */
  readonly cost?: Partial<CostModel>;
  /** Installed RAM in bytes: a multiple of 4096 from 64 KiB to {@link MAX_MEMORY} (default 256 MiB). */
  readonly memory?: number;
  /**
   * The fault handler (default the classic one, `classicFaultHandler` from @spf/fault-classic; the kernel's
   * test matrix swaps the default, see docs/ARCHITECTURE.md "Fault handlers"). By name: `faultHandlerByName()`.
   */
  readonly faultHandler?: FaultHandlerFactory;
  /** Map the shared zero page on read faults (default true). */
  readonly zeroPage?: boolean;
  /** `CONFIG_ARCH_HAS_PTE_SPECIAL` (default true, as on x86-64). */
  readonly pteSpecial?: boolean;
  /**
   * Free page-table pages by RCU after the TLB shootdown (`CONFIG_MMU_GATHER_RCU_TABLE_FREE`, @spf/vma's
   * `MmConfig.pgtableFreeRcu`; default false). Lespinasse's SPF then walks page tables under rcu_read_lock.
   */
  readonly pgtableFreeRcu?: boolean;
  /**
   * Every mm frees its page tables under `mm->page_table_lock` as well as mmap_lock (@spf/vma's
   * `MmConfig.freePgtablesUnderPtl`; Lespinasse's question 3). Default false, as in Linux. The fault
   * handler sees it in its environment (speculative page-table allocation is refused without it).
   */
  readonly freePgtablesUnderPtl?: boolean;
  /**
   * Where every mm releases a VMA's file (@spf/vma's `MmConfig.vmFileRelease`; Lespinasse's question 2):
   * `removeVma` (Linux and SPF v12), `freeVma` (when the VMA's refcount reaches zero) or `rcu` (after a
   * grace period). umount(2) says EBUSY until the file is released. Default: what the fault handler asks for
   * (`FaultHandler.mmConfig.vmFileRelease`: Dufour's design with `fileVmas` asks `freeVma`, Lespinasse's
   * with `fileVmas` `rcu`), else `removeVma`. A design given a mode it cannot speculate safely under does
   * not speculate on file VMAs.
   */
  readonly vmFileRelease?: VmFileRelease;
  /** The mmap lock of every mm: Linux's rw_semaphore (default) or a range lock. */
  readonly mmapLock?: MmapLockKind;
  /**
   * How `add_mm_counter()` updates the RSS counters, for faults and syscalls alike: Linux 6.2+'s per-CPU
   * counters (default `percpu`) or one atomic counter per mm (`atomic`, older kernels).
   */
  readonly rssCounting?: RssCounting;
  /** Record a machine trace (for `toChromeTrace`). */
  readonly trace?: boolean;
  /** Step limit of the machine (a livelock guard). */
  readonly maxSteps?: number;
  /**
   * Boot onto this machine instead of building one (for the explorer: a Scenario's `setup(m)` boots a
   * system on `m`); then `cpus`, `policy`, `seed`, `cost`, `trace` and `maxSteps` are the machine's.
   */
  readonly machine?: Machine;
  /** Check the mm invariants of every live process at the end of the run (default true). */
  readonly checkInvariants?: boolean;
  /**
   * Overcommit accounting (`vm.overcommit_memory` and friends, @spf/vma's `OvercommitPolicy`) against this
   * machine's `memory` and `swapPages` (default 0: no swap). Default mode `guess`, Linux's default: a
   * private writable or shared mapping larger than RAM plus swap fails with ENOMEM.
   */
  readonly overcommit?: {
    readonly mode?: OvercommitMode;
    /** `total_swap_pages` (default 0). */
    readonly swapPages?: number;
    /** `vm.overcommit_ratio` (default 50). */
    readonly ratio?: number;
    /** `vm.overcommit_kbytes` (default 0: use the ratio). */
    readonly kbytes?: number;
  };
  /**
   * The paging features the CPUs enumerate (CPUID; @spf/pagetable's `CpuFeatures`), passed to the MMU.
   * Default: a modern CPU with all of them. `nx: false` is refused with `UnsupportedCpuFeatureError`: the
   * kernel's page protections always carry _PAGE_NX (Linux drops it from `__supported_pte_mask` on such a
   * CPU, which is not modelled), so every user access would end in a reserved-bit fault.
   */
  readonly cpuFeatures?: Partial<CpuFeatures>;
  /**
   * The one disk file system mounted at `/mnt` (@spf/file-backed's `SuperBlock`): its block device (latency,
   * queue depth, `readAheadKb`, default 128 as Linux's default read_ahead_kb), `fault_around_bytes` (default
   * 64 KiB), and whether a fault waiting for I/O drops mmap_lock and retries (default true, as Linux).
   */
  readonly files?: {
    readonly device?: BlockDeviceOptions;
    readonly faultAroundBytes?: number;
    readonly dropMmapLockForIo?: boolean;
    /** The lock-dropping pieces of `filemap_fault()` to run instead of @spf/file-backed's (Lab 6). */
    readonly retryPaths?: FilemapRetryPaths;
  };
}

/** The result of {@link System.run}: the machine's result plus what happened to the processes. */
export interface SystemRunResult extends RunResult {
  /** Every process with how it ended (null if it was still running when the run stopped). */
  readonly processes: readonly {
    readonly pid: number;
    readonly name: string;
    readonly status: ExitStatus | null;
  }[];
  /** Kernel log lines (processes killed by signals, OOM). */
  readonly log: readonly string[];
}

/** The access of a user-mode instruction of each kind, made once (a translation needs no object of its own). */
const USER_ACCESS: Readonly<Record<AccessKind, WalkAccess>> = {
  read: { kind: 'read', user: true },
  write: { kind: 'write', user: true },
  fetch: { kind: 'fetch', user: true },
};

/** A bug in how the simulated kernel was used or a broken invariant, found by the kernel itself. */
export class SystemError extends KernelFault {
  override name = 'SystemError';
  constructor(message: string) {
    super('system', message);
  }
}

/**
 * The most RAM {@link boot} accepts: 64 GiB (2^24 frames). The simulator keeps a few bytes of `struct page`
 * state for every frame up front; at this size that is about 350 MB of host memory and 5 s to boot, and
 * much beyond it the host's typed arrays or heap give out.
 */
export const MAX_MEMORY = 2 ** 36;
/** The least RAM {@link boot} accepts: 64 KiB (16 frames). */
export const MIN_MEMORY = 2 ** 16;

/** A {@link BootConfig} value that cannot describe a machine; nothing was built. */
export class BootConfigError extends Error {
  override name = 'BootConfigError';
}

/** Most times one access may fault before the kernel declares a fault loop (a handler that maps nothing). */
const MAX_FAULTS_PER_ACCESS = 64;

/**
 * A booted simulated system: a machine, physical memory, the MMU with per-CPU TLBs, RCU, the fault handler
 * and the processes. Build one with {@link boot}, start processes with {@link spawnProcess}, then
 * {@link run} it once.
 */
export class System {
  readonly machine: Machine;
  readonly mem: PhysicalMemory;
  readonly mmu: Mmu;
  readonly rcu: Rcu;
  /**
   * The id space every mm of this system (and its VMAs, anon_vmas, shmem inodes) is numbered from, so two
   * systems booted with the same configuration and seed name their objects alike in one host process.
   */
  readonly ids: MmIds;
  readonly env: FaultEnv;
  readonly faultHandler: FaultHandler;
  readonly vmstat: VmStat;
  readonly cost: CostModel;
  readonly processes: Process[] = [];
  readonly log: string[] = [];
  readonly mmapLock: MmapLockKind;
  readonly rssCounting: RssCounting;
  /** Where a VMA's file is released (see {@link BootConfig.vmFileRelease}). */
  readonly vmFileRelease: VmFileRelease;
  /** The overcommit policy every address space of this system is charged against. */
  readonly overcommit: OvercommitPolicy;
  private readonly checkInvariants: boolean;
  private nextPid = 1;
  private nextTid = 1;
  /** Free frames right after boot, to find leaks once every process has exited. */
  readonly bootFreeFrames: number;
  /** The disk file system mounted at `/mnt`: what open(2) opens and umount(2) detaches. */
  readonly fs: SuperBlock;

  constructor(config: BootConfig = {}) {
    if (config.cpuFeatures?.nx === false) {
      throw new UnsupportedCpuFeatureError(
        'boot: cpuFeatures.nx = false is not supported by the simulated kernel: its page protections always set ' +
          '_PAGE_NX (bit 63), which is a reserved bit without NX (Linux clears it from __supported_pte_mask, not ' +
          'modelled here); to study a CPU without NX use new Mmu(mem, { cpuFeatures: { nx: false } }) from @spf/pagetable',
        'nx',
      );
    }
    const memory = config.memory ?? 256 * 1024 * 1024;
    if (
      typeof memory !== 'number' ||
      !Number.isSafeInteger(memory) ||
      memory % PAGE_SIZE !== 0 ||
      memory < MIN_MEMORY ||
      memory > MAX_MEMORY
    ) {
      throw new BootConfigError(
        `memory must be a multiple of 4096 bytes from ${MIN_MEMORY} (64 KiB) to ${MAX_MEMORY} (64 GiB, the limit of the simulator's per-frame state), got ${String(memory)}`,
      );
    }
    this.machine =
      config.machine ??
      new Machine({
        cpus: config.cpus ?? 1,
        seed: config.seed,
        policy: config.policy,
        cost: config.cost,
        maxSteps: config.maxSteps,
        trace: config.trace,
      });
    const cpus = this.machine.cpuCount;
    this.cost = this.machine.cost;
    const machine = this.machine;
    this.mem = new PhysicalMemory({
      size: memory,
      zeroPage: config.zeroPage ?? true,
      lineOf: (pa) => machine.physLine(pa),
    });
    this.mmu = new Mmu(this.mem, { cpus, cpuFeatures: config.cpuFeatures });
    this.rcu = new Rcu(this.machine);
    this.ids = new MmIds();
    this.vmstat = new VmStat();
    this.env = makeFaultEnv({
      mem: this.mem,
      cost: this.cost,
      useZeroPage: config.zeroPage ?? true,
      pteSpecial: config.pteSpecial ?? true,
      vmstat: this.vmstat,
      freePgtablesUnderPtl: config.freePgtablesUnderPtl ?? false,
      pgtableFreeRcu: config.pgtableFreeRcu ?? false,
      faultAroundBytes: config.files?.faultAroundBytes,
    });
    this.fs = new SuperBlock({
      env: this.env,
      rcu: this.rcu,
      device: config.files?.device,
      dropMmapLockForIo: config.files?.dropMmapLockForIo,
      retryPaths: config.files?.retryPaths,
    });
    this.faultHandler = (config.faultHandler ?? defaultFaultHandler())(this.env);
    this.mmapLock = config.mmapLock ?? 'rwsem';
    this.rssCounting = config.rssCounting ?? 'percpu';
    // The boot's own choice, else what the fault handler was posted with (a design speculating on file VMAs
    // needs vm_file to outlive its speculation: @spf/fault-spec's fileVmas), else Linux's.
    const release = config.vmFileRelease ?? this.faultHandler.mmConfig?.vmFileRelease ?? 'removeVma';
    if (!VM_FILE_RELEASE_MODES.includes(release)) {
      throw new BootConfigError(`vmFileRelease: ${new VmFileReleaseConfigError(release).message}`);
    }
    this.vmFileRelease = release;
    const oc = config.overcommit ?? {};
    try {
      this.overcommit = new OvercommitPolicy({
        mode: oc.mode,
        totalRamPages: memory / PAGE_SIZE,
        totalSwapPages: oc.swapPages,
        overcommitRatio: oc.ratio,
        overcommitKbytes: oc.kbytes,
        // vm_committed_as: the accounted pages of every live address space. Simplified: shared anonymous
        // (shmem) memory is checked when mapped but not counted here afterwards.
        committedPages: () => {
          let n = 0;
          for (const p of this.processes) if (p.status === null) n += p.mm.committed;
          return n;
        },
      });
    } catch (e) {
      if (e instanceof OvercommitConfigError) throw new BootConfigError(`overcommit: ${e.message}`);
      throw e;
    }
    this.bootFreeFrames = this.mem.freeCount;
    this.checkInvariants = config.checkInvariants ?? true;
    if (this.checkInvariants) this.machine.atEnd(() => this.assertInvariants());
  }

  /**
   * The page tables every mm of this system gets (@spf/vma's PagetableOps), sharing the fault handler's
   * environment so syscalls and faults charge the same costs.
   */
  private pageTables(pid: number): (mm: MmStruct) => PagetableOps {
    return PagetableOps.factory({ env: this.env, mmu: this.mmu, pcid: pid % 4096 });
  }

  /**
   * Creates a process with a fresh, empty address space whose main thread runs `program` on `cpu`.
   * Callable before {@link run} or from kernel code while the system runs.
   */
  spawnProcess(name: string, program: UserProgram, opts: { readonly cpu?: number } = {}): Process {
    const pid = this.nextPid++;
    const mm = new MmStruct({
      mmapLock: this.mmapLock,
      overcommit: this.overcommit,
      rcu: this.rcu,
      pageTables: this.pageTables(pid),
      rssCounting: this.rssCounting,
      freePgtablesUnderPtl: this.env.freePgtablesUnderPtl,
      pgtableFreeRcu: this.env.pgtableFreeRcu,
      ...this.faultHandler.mmConfig,
      vmFileRelease: this.vmFileRelease,
      ids: this.ids,
      name: `mm[${pid}]`,
    });
    const proc = new Process(pid, name, mm, null);
    this.processes.push(proc);
    this.spawnThread(proc, program, opts.cpu ?? 0);
    return proc;
  }

  /** Starts another thread of `proc` on `cpu` running `program` (`clone(CLONE_VM | CLONE_THREAD)`). */
  spawnThread(proc: Process, program: UserProgram, cpu: number): Thread {
    if (proc.status !== null) throw new SystemError(`cannot add a thread to ${proc}: it has exited`);
    const th = new Thread(this.nextTid++, proc, cpu);
    proc.threads.push(th);
    // copy_mm() with CLONE_VM: each further thread is a user of the mm (mmget()). Kept without a simulated
    // access (thread creation is not modelled as kernel code); read by SPF's single-thread shortcut.
    if (proc.live > 0) proc.mm.mmUsers.value++;
    proc.live++;
    th.task = this.machine.spawn(cpu, `${proc.name}[${proc.pid}.${th.tid}]`, this.threadMain(th, program));
    return th;
  }

  /**
   * Models `fork()` (kernel/fork.c `copy_process()` with `dup_mmap()`): a child process with a copy of the
   * parent's address space (private pages shared copy-on-write) whose only thread runs `program` on `cpu`.
   *
   * Out of memory while copying the address space (`dup_mmap()` returning -ENOMEM): @spf/vma has already
   * torn the partial child mm down, so no frame or page reference leaks and the parent is unchanged;
   * `copy_process()` unwinds and fork returns ENOMEM. No pid is consumed then (Linux allocates the pid
   * after `copy_mm()`), unless another fork took the next one meanwhile.
   */
  *fork(parent: Process, program: UserProgram, cpu: number): Kernel<SysResult<Process>> {
    const pid = this.nextPid++;
    let mm: MmStruct;
    try {
      mm = yield* dupMmap(parent.mm, this.pageTables(pid));
    } catch (e) {
      if (!(e instanceof ForkOutOfMemoryError)) throw e;
      if (this.nextPid === pid + 1) this.nextPid = pid;
      return fail(Errno.ENOMEM);
    }
    // copy_files() -> dup_fd(): the child's fds refer to the parent's open files.
    const child = new Process(pid, `${parent.name}-child`, mm, parent, parent.files.dup());
    this.processes.push(child);
    this.spawnThread(child, program, cpu);
    return ok(child);
  }

  private *threadMain(th: Thread, program: UserProgram): Kernel<void> {
    const ctx = new UserContext(this, th);
    try {
      yield* program(ctx);
    } catch (e) {
      if (e instanceof UserSignal) this.markKilled(th.process, e.info);
      else if (!(e instanceof ProcessExiting)) throw e;
    }
    yield* this.exitThread(th);
  }

  private markKilled(proc: Process, info: SignalInfo): void {
    if (proc.exiting !== null) return;
    proc.exiting = `killed by ${info.signal}`;
    proc.killedBy = info;
    this.log.push(`${proc}: killed by ${info.signal} (${info.code}) at 0x${info.address.toString(16)}`);
  }

  /**
   * Delivers a fault signal to a thread: thrown into the program as a {@link UserSignal} if the process
   * catches that signal, otherwise the process is killed and the thread unwinds with ProcessExiting.
   */
  raise(th: Thread, info: SignalInfo): never {
    const proc = th.process;
    if (info.signal !== 'SIGKILL' && proc.caught.has(info.signal)) throw new UserSignal(info);
    this.markKilled(proc, info);
    throw new ProcessExiting(proc.exiting as string);
  }

  /** Throws ProcessExiting if the thread's process is dying (checked at every access and syscall). */
  checkAlive(th: Thread): void {
    if (th.process.exiting !== null) throw new ProcessExiting(th.process.exiting);
  }

  /**
   * A user-mode access as the hardware does it: translate through the TLB and page tables
   * (`Mmu.translateKernel`); on #PF enter the kernel (charging `cost.exceptionEntryExit`), run the fault
   * handler, and retry the instruction; a fault the handler cannot fix becomes a signal. Returns the
   * physical address.
   */
  *translateUser(th: Thread, addr: number, kind: AccessKind): Kernel<number> {
    checkUserAddress(addr, kind);
    const proc = th.process;
    for (let tries = 0; ; tries++) {
      this.checkAlive(th);
      const st = this.mmu.cpu(th.cpu);
      if (st.mm !== proc.pt) this.mmu.switchMm(th.cpu, proc.pt);
      const r = yield* call(this.mmu.translateKernel(th.cpu, addr, USER_ACCESS[kind]));
      if (r.ok) return Number(r.pa);
      if (r.fault === 'GP') this.raise(th, { signal: 'SIGSEGV', code: 'SI_KERNEL', address: addr });
      if (tries >= MAX_FAULTS_PER_ACCESS) {
        throw new SystemError(
          `fault loop: ${kind} of 0x${addr.toString(16)} by ${proc} faulted ${tries} times (error code ${r.ok ? 0 : r.fault === 'PF' ? r.errorCode : 0}); the fault handler reports success without mapping the page`,
        );
      }
      yield delayEffect(this.cost.exceptionEntryExit, 'page fault entry/exit');
      const out = yield* call(
        this.faultHandler.handleUserFault({
          mm: proc.mm,
          address: addr,
          errorCode: r.fault === 'PF' ? r.errorCode : 0,
          task: th.counters,
          signalPending: proc.fatalSignalPending,
        }),
      );
      switch (out.kind) {
        case 'handled':
        case 'signal-pending': // back to user mode: checkAlive() above delivers the kill
          continue;
        case 'sigsegv':
          this.raise(th, { signal: 'SIGSEGV', code: out.code, address: addr });
          break;
        case 'sigbus':
          this.raise(th, { signal: 'SIGBUS', code: 'ADRERR', address: addr });
          break;
        case 'oom':
          this.raise(th, { signal: 'SIGKILL', code: 'OOM', address: addr });
      }
    }
  }

  /**
   * One-byte user load: translate, then a read of the memory line; returns the byte. The translation and the
   * read are one instruction: see {@link store8}.
   */
  *load8(th: Thread, addr: number, kind: 'read' | 'fetch' = 'read'): Kernel<number> {
    const tlb = this.mmu.cpu(th.cpu).tlb;
    for (;;) {
      const pa = yield* call(this.translateUser(th, addr, kind));
      const gen = tlb.flushGeneration;
      yield readEffect(this.mem.lineOf(pa), kind === 'fetch' ? 'ifetch' : 'load');
      if (tlb.flushGeneration === gen) return this.mem.read8(pa);
    }
  }

  /**
   * One-byte user store: translate, then a write of the memory line.
   *
   * On hardware the translation and the data access belong to one instruction, and interrupts are taken
   * only between instructions: the store completes before a TLB-shootdown IPI is acknowledged, or it is
   * executed again after the handler (and then walks the updated page tables, and may fault). Here the data
   * access is a machine step of its own, so this CPU may run an IPI handler between the translation and the
   * write. If its TLB was flushed meanwhile (`Tlb.flushGeneration` changed), the access is restarted instead
   * of going through a translation the completed shootdown invalidated (whose frame the unmapping CPU may
   * have freed). The copies of {@link UserContext.loadBytes} and `storeBytes` have no such window: they copy
   * in the same step as the translation's last effect.
   */
  *store8(th: Thread, addr: number, value: number): Kernel<void> {
    // The message is built only for a bad value (a template string per store is a measurable cost).
    if (!Number.isSafeInteger(value))
      checkByte(value, `store8(0x${Number.isSafeInteger(addr) ? addr.toString(16) : addr})`);
    const tlb = this.mmu.cpu(th.cpu).tlb;
    for (;;) {
      const pa = yield* call(this.translateUser(th, addr, 'write'));
      const gen = tlb.flushGeneration;
      yield writeEffect(this.mem.lineOf(pa), 'store');
      if (tlb.flushGeneration !== gen) continue;
      this.mem.write8(pa, value);
      return;
    }
  }

  /**
   * Models `mm_populate()` (mm/gup.c `populate_vma_page_range()`): faults in every page of [start, start+len)
   * that is not mapped yet, for MAP_POPULATE and VM_LOCKED; a write fault for private writable mappings.
   * Like `faultin_page()` it always takes the classic path under mmap_lock (fault-classic's
   * `doUserAddrFault` without a lockless attempt), whatever the system's fault handler: get_user_pages never
   * faults speculatively in any of the designs, and the thread populating may not have run in user mode yet,
   * so its CPU may not be in the mm's cpumask that shootdowns reach.
   */
  *populate(th: Thread, mm: MmStruct, start: number, len: number, writeFault: boolean): Kernel<void> {
    for (let a = start; a < start + len; a += PAGE_SIZE) {
      if (mm.pgd.leaf(a) !== null) continue;
      const out = yield* doUserAddrFault(this.env, {
        mm,
        address: a,
        errorCode: PF_USER | (writeFault ? PF_WRITE : 0),
        task: th.counters,
      });
      if (out.kind !== 'handled') return;
    }
  }

  private *exitThread(th: Thread): Kernel<void> {
    const proc = th.process;
    proc.deadMinflt += th.counters.minflt;
    proc.deadMajflt += th.counters.majflt;
    th.done = true;
    proc.live--;
    if (proc.live > 0) {
      proc.mm.mmUsers.value--; // the thread's mmput(); the last one is exitMmap's below
      return;
    }
    if (proc.exiting === null) proc.exiting = 'exited';
    if (this.checkInvariants) {
      // The address space is quiescent now (no thread of it is left): check it before tearing it down. Page
      // mapcounts and refcounts span every mm sharing the pages, so they are checked at the end of the run.
      const problems = mmInvariantProblems([proc.mm]);
      if (problems.length > 0) {
        throw new SystemError(`invariants of ${proc} violated at exit:\n  ${problems.join('\n  ')}`);
      }
    }
    yield* exitMmap(proc.mm);
    // do_exit(): exit_mm() then exit_files(), which closes every fd (the last fput releases the file).
    yield* proc.files.closeAll();
    proc.status =
      proc.killedBy !== null
        ? { kind: 'killed', signal: proc.killedBy }
        : { kind: 'exited', code: proc.exitCode };
    yield* wake(proc.exitWait, Number.POSITIVE_INFINITY);
  }

  /**
   * Models `wait4()` for one pid (kernel/exit.c `do_wait()`): ECHILD unless `pid` is a child of `parent`
   * that has not been reaped yet; otherwise sleeps until the child has exited, reaps it and returns how it
   * ended. Simplified: no options (WNOHANG, WUNTRACED), no rusage of the child.
   */
  *wait(parent: Process, pid: number): Kernel<SysResult<ExitStatus>> {
    const child = this.processes.find((p) => p.pid === pid && p.parent === parent && !p.reaped);
    if (child === undefined) return fail(Errno.ECHILD);
    yield* block(child.exitWait, () => child.status !== null, `wait4(${child.pid})`);
    if (child.reaped) return fail(Errno.ECHILD); // another thread of the parent reaped it meanwhile
    child.reaped = true;
    return ok(child.status as ExitStatus);
  }

  /** The `PageStateReader` @spf/vma's invariant checker uses for this system's pages. */
  pageStateReader(): PageStateReader {
    return pageStates;
  }

  /**
   * The mm invariants (@spf/vma's checker) of every live process, plus: once every process has exited,
   * every frame allocated since boot has been freed. Returns the problems found.
   */
  invariantProblems(): string[] {
    const live = this.processes.filter((p) => p.status === null).map((p) => p.mm);
    const problems = mmInvariantProblems(live, this.pageStateReader());
    // Pages of the page cache stay after the files are closed, as in Linux (until evicted or truncated).
    const cached = this.pageCachePages();
    if (
      live.length === 0 &&
      this.processes.length > 0 &&
      this.mem.freeCount + cached !== this.bootFreeFrames
    ) {
      problems.push(
        `every process has exited but ${this.bootFreeFrames - this.mem.freeCount - cached} frames allocated since boot are still in use besides ${cached} page-cache pages (a leak)`,
      );
    }
    return problems;
  }

  /** Pages in the page cache of every file of the file system (frames that outlive the processes). */
  pageCachePages(): number {
    let n = 0;
    for (const inode of this.fs.inodes.values()) n += inode.mapping.nrpages;
    return n;
  }

  /**
   * Models `umount(2)` of the file system at `/mnt`: EBUSY while any of its files is referenced (an open fd,
   * or a VMA whose `vm_file` is not released yet); EINVAL if already unmounted.
   */
  umount(): SysResult<0> {
    const r = this.fs.umount();
    return r === 0 ? ok(0) : fail(r);
  }

  /** Throws a SystemError listing every broken invariant (runs at the end of each run by default). */
  assertInvariants(): void {
    const problems = this.invariantProblems();
    if (problems.length > 0) throw new SystemError(`invariants violated:\n  ${problems.join('\n  ')}`);
  }

  /** Runs the system until every task has finished (or a failure stops it). A system runs once. */
  run(): SystemRunResult {
    const r = this.machine.run();
    // Field by field, not a spread: a spread would read `schedule`, which the machine encodes only on first
    // use (one string of every step: hundreds of MB for a long many-CPU run nobody asks about).
    return {
      ok: r.ok,
      failure: r.failure,
      steps: r.steps,
      time: r.time,
      clocks: r.clocks,
      get schedule(): string {
        return r.schedule;
      },
      traceHash: r.traceHash,
      trace: r.trace,
      effects: r.effects,
      spinsSkipped: r.spinsSkipped,
      processes: this.processes.map((p) => ({ pid: p.pid, name: p.name, status: p.status })),
      log: this.log,
    };
  }
}

/**
 * Boots a simulated system: a machine with `cpus` CPUs under `policy`, `memory` bytes of RAM (with or
 * without the shared zero page), the MMU, RCU, and the fault handler (classic by default). Returns the
 * {@link System}; add processes with `spawnProcess`, then `run()`.
 */
export function boot(config: BootConfig = {}): System {
  return new System(config);
}
