import type { MmStruct } from './mm-struct.js';
import { PAGE_SIZE } from './vm-flags.js';

/**
 * `vm.overcommit_memory` (Documentation/mm/overcommit-accounting.rst): `guess` (0, Linux's default) refuses
 * only a single request larger than RAM plus swap; `always` (1) never refuses; `never` (2) refuses once the
 * committed address space would exceed the commit limit (swap plus `overcommitRatio`% of RAM, or
 * `overcommitKbytes`).
 */
export type OvercommitMode = 'guess' | 'always' | 'never';

/** How an {@link OvercommitPolicy} is built. Sizes are in pages of 4 KiB unless named in kbytes. */
export type OvercommitOptions = {
  /** The accounting mode (default `guess`). */
  readonly mode?: OvercommitMode;
  /** `totalram_pages()`: the machine's RAM in pages. */
  readonly totalRamPages: number;
  /** `total_swap_pages` (default 0: the simulated machine has no swap). */
  readonly totalSwapPages?: number;
  /** `vm.overcommit_ratio`, percent of RAM counted by `never` (default 50). */
  readonly overcommitRatio?: number;
  /** `vm.overcommit_kbytes`: if non-zero, replaces the ratio (default 0). */
  readonly overcommitKbytes?: number;
  /**
   * `vm.admin_reserve_kbytes`, kept back from `never` for CAP_SYS_ADMIN (default as `init_admin_reserve()`:
   * the smaller of 1/32 of RAM and 8 MiB; simulated tasks are never CAP_SYS_ADMIN).
   */
  readonly adminReserveKbytes?: number;
  /**
   * `vm.user_reserve_kbytes` (default as `init_user_reserve()`: the smaller of 1/32 of RAM and 128 MiB):
   * under `never` a process may use the commit limit minus min(total_vm / 32, this).
   */
  readonly userReserveKbytes?: number;
  /**
   * `vm_committed_as`: pages currently committed system-wide (needed by `never` only). The kernel that owns
   * the address spaces supplies it, for example the sum of `MmStruct.committed` over live processes.
   */
  readonly committedPages?: () => number;
};

const KB_PER_PAGE = PAGE_SIZE / 1024;

/** An {@link OvercommitOptions} value that is not a size or mode. */
export class OvercommitConfigError extends Error {
  override name = 'OvercommitConfigError';
}

function pagesOption(v: number | undefined, name: string, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isSafeInteger(x) || x < 0) {
    throw new OvercommitConfigError(`${name} must be a whole number of at least 0, got ${String(v)}`);
  }
  return x;
}

/**
 * The overcommit policy of a machine: models `__vm_enough_memory()` and `vm_commit_limit()` in mm/util.c
 * (Linux 6.x), which `security_vm_enough_memory_mm()` calls for every accounted mapping (mmap of private
 * writable memory, shared anonymous memory, mprotect making memory writable, mremap growing it).
 *
 * Simplifications: no hugetlb pages (so the commit limit counts all of RAM), no per-CPU counter batching,
 * and no ratelimited "not enough memory for the allocation" log line.
 */
export class OvercommitPolicy {
  readonly mode: OvercommitMode;
  readonly totalRamPages: number;
  readonly totalSwapPages: number;
  readonly overcommitRatio: number;
  readonly overcommitKbytes: number;
  readonly adminReserveKbytes: number;
  readonly userReserveKbytes: number;
  private readonly committedPages: () => number;

  constructor(opts: OvercommitOptions) {
    const mode = opts.mode ?? 'guess';
    if (mode !== 'guess' && mode !== 'always' && mode !== 'never') {
      throw new OvercommitConfigError(
        `the overcommit mode must be guess, always or never, got ${String(mode)}`,
      );
    }
    this.mode = mode;
    this.totalRamPages = pagesOption(opts.totalRamPages, 'totalRamPages', 0);
    this.totalSwapPages = pagesOption(opts.totalSwapPages, 'totalSwapPages', 0);
    this.overcommitRatio = pagesOption(opts.overcommitRatio, 'overcommitRatio', 50);
    this.overcommitKbytes = pagesOption(opts.overcommitKbytes, 'overcommitKbytes', 0);
    const ramKb = this.totalRamPages * KB_PER_PAGE;
    this.adminReserveKbytes = pagesOption(
      opts.adminReserveKbytes,
      'adminReserveKbytes',
      Math.min(Math.floor(ramKb / 32), 1 << 13),
    );
    this.userReserveKbytes = pagesOption(
      opts.userReserveKbytes,
      'userReserveKbytes',
      Math.min(Math.floor(ramKb / 32), 1 << 17),
    );
    if (mode === 'never' && opts.committedPages === undefined) {
      throw new OvercommitConfigError(
        'the never mode needs committedPages (vm_committed_as) to compare with the limit',
      );
    }
    this.committedPages = opts.committedPages ?? (() => 0);
  }

  /** Models `vm_commit_limit()`: swap plus `overcommit_kbytes`, or plus `overcommit_ratio`% of RAM. */
  commitLimit(): number {
    const ram =
      this.overcommitKbytes !== 0
        ? Math.floor(this.overcommitKbytes / KB_PER_PAGE)
        : Math.floor((this.totalRamPages * this.overcommitRatio) / 100);
    return ram + this.totalSwapPages;
  }

  /** `vm_committed_as` as the policy sees it now (pages). */
  committed(): number {
    return this.committedPages();
  }

  /**
   * Models `__vm_enough_memory(mm, pages, cap_sys_admin = 0)`: whether `pages` more may be committed for
   * `mm`. `always` says yes; `guess` says no only when this one request exceeds RAM plus swap; `never`
   * says yes while the committed pages plus the request stay below the commit limit less the admin
   * reserve and, for a process, less min(total_vm / 32, user reserve). The caller then records the charge
   * (the VM_ACCOUNT pages of `MmStruct.committed`).
   */
  vmEnoughMemory(mm: MmStruct | null, pages: number): boolean {
    if (this.mode === 'always') return true;
    if (this.mode === 'guess') return pages <= this.totalRamPages + this.totalSwapPages;
    let allowed = this.commitLimit() - Math.floor(this.adminReserveKbytes / KB_PER_PAGE);
    if (mm !== null) {
      allowed -= Math.min(Math.floor(mm.totalVm / 32), Math.floor(this.userReserveKbytes / KB_PER_PAGE));
    }
    return this.committed() + pages < allowed;
  }
}

/**
 * Models `security_vm_enough_memory_mm()` (include/linux/security.h, which calls `__vm_enough_memory()`
 * with the task's CAP_SYS_ADMIN): true when `mm` has no overcommit policy (an address space built outside
 * a booted system, where memory is not bounded) or its policy allows `pages` more.
 */
export function securityVmEnoughMemoryMm(mm: MmStruct, pages: number): boolean {
  return mm.overcommit === null || mm.overcommit.vmEnoughMemory(mm, pages);
}
