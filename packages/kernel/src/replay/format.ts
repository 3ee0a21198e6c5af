/**
 * The replay op-script format: the typed ops that `spf replay` and the host conformance harness both run.
 *
 * A script is text with one op per line; `#` starts a comment and blank lines are ignored. Offsets and
 * lengths count 4 KiB pages from {@link ARENA_BASE}:
 *
 * ```text
 * mmap <off> <npages> <prot> <share> anon|<id>:<pgoff> [fixed]
 * munmap <off> <npages>
 * mprotect <off> <npages> <prot>
 * touch <page> r|w
 * maps
 * pagemap <off> <npages>
 * file <id> <npages>
 * evict <id>
 * truncate <id> <npages>
 * read <id> <page>
 * write <id> <page>
 * ```
 *
 * `prot` is `-` or any of the letters `r`, `w`, `x` (each at most once); `share` is `private` or `shared`.
 * `mmap` uses MAP_FIXED_NOREPLACE unless `fixed` asks for MAP_FIXED. File ids are 0 to
 * {@link MAX_FILE_ID}; `file` creates file `<id>` with {@link fileByte} contents, fsynced and left in the
 * page cache; `evict` fsyncs it and drops its unmapped pages from the page cache (posix_fadvise
 * DONTNEED); `truncate` is ftruncate to a number of pages; `read` and `write` are a one-byte pread and a
 * pwrite of {@link WRITE_STORE_VALUE} at the page's first byte; `<id>:<pgoff>` maps the file from page
 * `pgoff`.
 */

import { PAGE_SIZE } from '@spf/pagetable';

/** Virtual address of page 0 of the replay arena (16 TiB into the address space, far from any default mmap). */
export const ARENA_BASE = 0x1000_0000_0000;

/** Bytes in one replay page (the x86-64 base page). */
export const REPLAY_PAGE_SIZE = PAGE_SIZE;

/** Pages in the arena: every op's range must end at or before this page (2^32 pages, 16 TiB). */
export const ARENA_PAGES = 2 ** 32;

/** Largest `pagemap` range, in pages (one output character per page). */
export const MAX_PAGEMAP_PAGES = 65536;

/** Largest file id of the file ops (the harness keeps a table of 64 files). */
export const MAX_FILE_ID = 63;

/** Largest size of a file in `file`/`truncate`, and largest page of a `write` (65536 pages, 256 MiB). */
export const MAX_FILE_PAGES = 65536;

/** The byte a `write <id> <page>` stores at the page's first byte. */
export const WRITE_STORE_VALUE = 0x77;

/** Byte `b` of page `p` of the file a `file <id> <npages>` op creates: `(p*13 + b*7 + id) & 0xff`. */
export function fileByte(id: number, page: number, byte: number): number {
  return (page * 13 + byte * 7 + id) & 0xff;
}

/** Protection bits of a mapping, as mmap's and mprotect's `prot` argument. */
export interface Prot {
  readonly read: boolean;
  readonly write: boolean;
  readonly exec: boolean;
}

/** MAP_PRIVATE or MAP_SHARED. */
export type Share = 'private' | 'shared';

/** A touch is one load (`r`) or one store of 0x5a (`w`). */
export type Access = 'r' | 'w';

/** The byte a `touch <page> w` stores at the page's first byte. */
export const TOUCH_STORE_VALUE = 0x5a;

/** An mmap of anonymous memory (`anon`). */
export interface AnonSource {
  readonly kind: 'anon';
}

/** An mmap of the script's file `id` from its page `pgoff` (`<id>:<pgoff>`). */
export interface FileSource {
  readonly kind: 'file';
  readonly id: number;
  readonly pgoff: number;
}

/** Where an mmap's pages come from. */
export type MmapSource = AnonSource | FileSource;

/** `mmap <off> <npages> <prot> <share> anon|<id>:<pgoff> [fixed]`. */
export interface MmapOp {
  readonly kind: 'mmap';
  readonly off: number;
  readonly npages: number;
  readonly prot: Prot;
  readonly share: Share;
  readonly source: MmapSource;
  /** MAP_FIXED (replaces what is there) instead of MAP_FIXED_NOREPLACE (fails with EEXIST). */
  readonly fixed: boolean;
}

/** `munmap <off> <npages>`. */
export interface MunmapOp {
  readonly kind: 'munmap';
  readonly off: number;
  readonly npages: number;
}

/** `mprotect <off> <npages> <prot>`. */
export interface MprotectOp {
  readonly kind: 'mprotect';
  readonly off: number;
  readonly npages: number;
  readonly prot: Prot;
}

/** `touch <page> r|w`: one access at the page's first byte. */
export interface TouchOp {
  readonly kind: 'touch';
  readonly page: number;
  readonly access: Access;
}

/** `maps`: the arena's lines of /proc/self/maps. */
export interface MapsOp {
  readonly kind: 'maps';
}

/** `pagemap <off> <npages>`: what backs each page, from /proc/self/pagemap. */
export interface PagemapOp {
  readonly kind: 'pagemap';
  readonly off: number;
  readonly npages: number;
}

/** `file <id> <npages>`: create the file, write its {@link fileByte} contents, fsync. */
export interface FileOp {
  readonly kind: 'file';
  readonly id: number;
  readonly npages: number;
}

/** `evict <id>`: fsync, then posix_fadvise(POSIX_FADV_DONTNEED) over the whole file. */
export interface EvictOp {
  readonly kind: 'evict';
  readonly id: number;
}

/** `truncate <id> <npages>`: ftruncate to `npages` pages. */
export interface TruncateOp {
  readonly kind: 'truncate';
  readonly id: number;
  readonly npages: number;
}

/** `read <id> <page>`: pread of the page's first byte. */
export interface ReadOp {
  readonly kind: 'read';
  readonly id: number;
  readonly page: number;
}

/** `write <id> <page>`: pwrite of {@link WRITE_STORE_VALUE} at the page's first byte. */
export interface WriteOp {
  readonly kind: 'write';
  readonly id: number;
  readonly page: number;
}

/** The ops on files (everything but the memory ops). */
export type FileReplayOp = FileOp | EvictOp | TruncateOp | ReadOp | WriteOp;

/** One op of a replay script. */
export type ReplayOp = MmapOp | MunmapOp | MprotectOp | TouchOp | MapsOp | PagemapOp | FileReplayOp;

/** An op as parsed from a script, with the 1-based line it came from. */
export type ParsedOp = ReplayOp & { readonly line: number };

/** No access at all (`-`). */
export const PROT_NONE: Prot = Object.freeze({ read: false, write: false, exec: false });

/** Formats protection bits as a script token: `-`, or the letters in the order r, w, x. */
export function formatProt(prot: Prot): string {
  const s = (prot.read ? 'r' : '') + (prot.write ? 'w' : '') + (prot.exec ? 'x' : '');
  return s === '' ? '-' : s;
}

/** Virtual address of the first byte of an arena page. */
export function arenaAddress(page: number): number {
  return ARENA_BASE + page * REPLAY_PAGE_SIZE;
}

/** Formats one op as a canonical script line (what `parseScript` reads back to the same op). */
export function formatOp(op: ReplayOp): string {
  switch (op.kind) {
    case 'mmap': {
      const src = op.source.kind === 'anon' ? 'anon' : `${op.source.id}:${op.source.pgoff}`;
      return `mmap ${op.off} ${op.npages} ${formatProt(op.prot)} ${op.share} ${src}${op.fixed ? ' fixed' : ''}`;
    }
    case 'munmap':
      return `munmap ${op.off} ${op.npages}`;
    case 'mprotect':
      return `mprotect ${op.off} ${op.npages} ${formatProt(op.prot)}`;
    case 'touch':
      return `touch ${op.page} ${op.access}`;
    case 'maps':
      return 'maps';
    case 'pagemap':
      return `pagemap ${op.off} ${op.npages}`;
    case 'file':
      return `file ${op.id} ${op.npages}`;
    case 'evict':
      return `evict ${op.id}`;
    case 'truncate':
      return `truncate ${op.id} ${op.npages}`;
    case 'read':
      return `read ${op.id} ${op.page}`;
    case 'write':
      return `write ${op.id} ${op.page}`;
  }
}

/** Formats ops as a canonical script: one line each, newline-terminated, no comments. */
export function formatScript(ops: readonly ReplayOp[]): string {
  return ops.map((op) => `${formatOp(op)}\n`).join('');
}
