import { type Kernel, MemoryLine, readEffect } from '@spf/machine';
import { PAGE_SIZE } from '@spf/pagetable';
import { AddressSpace } from './address-space.js';
import type { SuperBlock } from './super-block.js';

/**
 * `struct inode` of a regular file, reduced to what the page cache and the fault path read: the size
 * (`i_size`), the page cache (`i_mapping`), and the file's blocks on the device (`blocks`: page index ->
 * the 4 KiB as last written back; a hole reads as zeros).
 */
export class Inode {
  /** `i_size` in bytes. */
  size = 0;
  /** The data on the device, per page (what a read from the disk returns). */
  readonly blocks = new Map<number, Uint8Array>();
  /** `i_mapping`. */
  readonly mapping: AddressSpace;
  /** The inode's cache line (`i_size` and friends). */
  readonly line: MemoryLine;
  /** Open files of this inode (`struct file`s alive). */
  openFiles = 0;
  /** Unlinked from its directory (still alive while open). */
  unlinked = false;
  /**
   * Page indexes whose blocks the device cannot read (a media error under them): a read request covering
   * one completes with an error for that page (`folio_end_read(folio, false)`: unlocked, not uptodate), so
   * read(2) says EIO and a fault on it SIGBUS. Empty by default; tests add to it.
   */
  readonly badPages = new Set<number>();

  constructor(
    readonly sb: SuperBlock,
    readonly ino: number,
    readonly path: string,
  ) {
    this.line = new MemoryLine(`inode#${ino}`);
    this.mapping = new AddressSpace(this);
  }

  /** `i_size_read()`: one load of the inode's line. */
  *touch(): Kernel<void> {
    yield readEffect(this.line, 'i_size_read');
  }

  /** `DIV_ROUND_UP(i_size, PAGE_SIZE)`: pages the file covers (the first index past EOF). */
  get sizePages(): number {
    return Math.ceil(this.size / PAGE_SIZE);
  }
}
