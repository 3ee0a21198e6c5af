/**
 * `struct file_ra_state` (include/linux/fs.h): the readahead state of one open file. `start`, `size` and
 * `asyncSize` describe the current window (`async_size` pages before its end carry the PG_readahead marker
 * that starts the next window); `mmapMiss` counts page-cache misses of mmap faults against hits (readahead
 * for mmap is turned off above MMAP_LOTSAMISS); `prevPos` is the byte after the last read(2).
 */
export class FileRaState {
  start = 0;
  size = 0;
  asyncSize = 0;
  /** Folio order of the next readahead (`ra->order`): 0 for mmap read-around, +2 per async window. */
  order = 0;
  mmapMiss = 0;
  /** -1 before the first read (`file_ra_state_init()`). */
  prevPos = -1;
  constructor(
    /** Maximum readahead window in pages (`ra_pages`, from the device's read_ahead_kb). */
    public raPages: number,
  ) {}
}

/** MMAP_LOTSAMISS in mm/filemap.c. */
export const MMAP_LOTSAMISS = 100;
