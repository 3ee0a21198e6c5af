import type { Prot } from './format.js';

/**
 * Names of the errno values a replay syscall can report. The host harness prints any other errno as
 * `E<number>`, which is what the template literal member stands for.
 */
export type ErrnoName =
  | 'EINVAL'
  | 'ENOMEM'
  | 'EEXIST'
  | 'EACCES'
  | 'EPERM'
  | 'EAGAIN'
  | 'EFAULT'
  | 'EBADF'
  | 'ENODEV'
  | 'EOVERFLOW'
  | 'ENFILE'
  | 'EMFILE'
  | 'EBUSY'
  | 'ETXTBSY'
  | 'ENOENT'
  | 'EFBIG'
  | 'ENOSPC'
  | 'EIO'
  | 'ESPIPE'
  | 'EISDIR'
  | `E${number}`;

/** What `mmap`, `munmap` or `mprotect` returned: success, or the errno. Prints `mmap ok` / `mmap EEXIST`. */
export interface SyscallObservation {
  readonly op: 'mmap' | 'munmap' | 'mprotect';
  /** null for success. */
  readonly errno: ErrnoName | null;
}

/**
 * What `file`, `evict` or `truncate` returned: prints `file <id> ok` / `truncate <id> EINVAL`.
 */
export interface FileSyscallObservation {
  readonly op: 'file' | 'evict' | 'truncate';
  readonly id: number;
  /** null for success. */
  readonly errno: ErrnoName | null;
}

/**
 * What `read <id> <page>` found: `read <id> <page> val=<byte>`, `read <id> <page> eof` when the page starts at
 * or past the end of the file, or `read <id> <page> <errno>` (EBADF for an id without a file).
 */
export interface ReadObservation {
  readonly op: 'read';
  readonly id: number;
  readonly page: number;
  readonly result: { readonly value: number } | 'eof' | { readonly errno: ErrnoName };
}

/** What `write <id> <page>` returned: `write <id> <page> ok` or `write <id> <page> <errno>`. */
export interface WriteObservation {
  readonly op: 'write';
  readonly id: number;
  readonly page: number;
  /** null for success. */
  readonly errno: ErrnoName | null;
}

/** si_code of a SIGSEGV: no VMA there (MAPERR), the VMA forbids the access (ACCERR), or a protection key. */
export type SegvCode = 'MAPERR' | 'ACCERR' | 'PKUERR';

/**
 * The outcome of one `touch`. A completed access prints `touch ok min=<minor> maj=<major>` (and ` val=<byte>`
 * in decimal for a load); a fault that raised a signal prints `touch SIGSEGV MAPERR|ACCERR` or `touch SIGBUS`.
 * The fault counts are the task's minflt/majflt deltas around the single access.
 */
export type TouchObservation =
  | {
      readonly op: 'touch';
      readonly result: 'ok';
      readonly minflt: number;
      readonly majflt: number;
      /** The byte loaded; absent for a store. */
      readonly value?: number;
    }
  | { readonly op: 'touch'; readonly result: 'SIGSEGV'; readonly code: SegvCode }
  | { readonly op: 'touch'; readonly result: 'SIGBUS' };

/** One VMA inside the arena, as a /proc/self/maps line relative to the arena. */
export interface MapsEntry {
  /** First page (inclusive), relative to the arena base. */
  readonly start: number;
  /** End page (exclusive). */
  readonly end: number;
  readonly prot: Prot;
  /** `s` (VM_MAYSHARE) rather than `p` in the fourth perms column. */
  readonly shared: boolean;
  /**
   * The offset column in pages, exactly as /proc/self/maps prints it: 0 for private anonymous memory (the
   * kernel hides vm_pgoff when there is no vm_file); for shared anonymous memory the page offset into its
   * shmem object, so the middle piece of a split shared mapping shows a non-zero pgoff.
   */
  readonly pgoff: number;
  /** The script's file id when the VMA maps one of its files (printed `f<id>`); absent (`-`) otherwise. */
  readonly file?: number;
}

/** `maps`: the arena's VMAs in address order. Prints `maps`, one line per VMA, then `end`. */
export interface MapsObservation {
  readonly op: 'maps';
  readonly vmas: readonly MapsEntry[];
}

/**
 * What backs one page: `.` not present, `Z` the shared zero page, `A` a private anonymous page,
 * `F` a file-backed or shared page (pagemap bit 61, which shared anonymous memory sets too).
 */
export type PageState = '.' | 'Z' | 'A' | 'F';

/** `pagemap <off> <npages>`: prints `pagemap ` followed by one {@link PageState} character per page. */
export interface PagemapObservation {
  readonly op: 'pagemap';
  readonly pages: readonly PageState[];
}

/** What one op of a replay script observed. `spf replay` and the host harness print the same lines. */
export type Observation =
  | SyscallObservation
  | TouchObservation
  | MapsObservation
  | PagemapObservation
  | FileSyscallObservation
  | ReadObservation
  | WriteObservation;

/** The perms column of a maps line, e.g. `rw-p`, `r--s`, `---p`. */
export function formatPerms(prot: Prot, shared: boolean): string {
  return (prot.read ? 'r' : '-') + (prot.write ? 'w' : '-') + (prot.exec ? 'x' : '-') + (shared ? 's' : 'p');
}

/** One maps line: `<startpage>-<endpage> <perms> <pgoff> -`, or `... f<id>` for a file of the script. */
export function formatMapsEntry(e: MapsEntry): string {
  return `${e.start}-${e.end} ${formatPerms(e.prot, e.shared)} ${e.pgoff} ${e.file === undefined ? '-' : `f${e.file}`}`;
}

/**
 * Formats one observation as the line(s) `spf replay` and the host harness print, without a trailing
 * newline (`maps` spans several lines).
 */
export function formatObservation(obs: Observation): string {
  switch (obs.op) {
    case 'mmap':
    case 'munmap':
    case 'mprotect':
      return `${obs.op} ${obs.errno ?? 'ok'}`;
    case 'touch':
      if (obs.result === 'ok') {
        const val = obs.value === undefined ? '' : ` val=${obs.value}`;
        return `touch ok min=${obs.minflt} maj=${obs.majflt}${val}`;
      }
      return obs.result === 'SIGSEGV' ? `touch SIGSEGV ${obs.code}` : 'touch SIGBUS';
    case 'maps':
      return ['maps', ...obs.vmas.map(formatMapsEntry), 'end'].join('\n');
    case 'pagemap':
      return `pagemap ${obs.pages.join('')}`;
    case 'file':
    case 'evict':
    case 'truncate':
      return `${obs.op} ${obs.id} ${obs.errno ?? 'ok'}`;
    case 'read': {
      const r = obs.result;
      const what = r === 'eof' ? 'eof' : 'value' in r ? `val=${r.value}` : r.errno;
      return `read ${obs.id} ${obs.page} ${what}`;
    }
    case 'write':
      return `write ${obs.id} ${obs.page} ${obs.errno ?? 'ok'}`;
  }
}

/** Formats a run's observations as the complete output: every line newline-terminated. */
export function formatObservations(list: readonly Observation[]): string {
  return list.map((o) => `${formatObservation(o)}\n`).join('');
}
