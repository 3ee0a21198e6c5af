// @spf/file-backed: files, the page cache, a block device with latency and the file-backed fault path.
export { AddressSpace } from './address-space.js';
export { BlockDevice, type BlockDeviceOptions, type EndIo } from './block-device.js';
export { FileBackedConfigError } from './errors.js';
export { File } from './file.js';
export {
  fadviseDontneed,
  fileFsync,
  fileRead,
  fileTruncate,
  fileWrite,
  filemapFdatawrite,
  folioMkclean,
  MS_ASYNC,
  MS_INVALIDATE,
  MS_SYNC,
  POSIX_FADV_DONTNEED,
  sysMsync,
  truncateInodePages,
  unmapMappingRange,
  vfsFsyncRange,
} from './file-ops.js';
export { FileRaState, MMAP_LOTSAMISS } from './file-ra-state.js';
export {
  doAsyncMmapReadahead,
  doSyncMmapReadahead,
  filemapFault,
  filemapGetFolioCreate,
  filemapMapPages,
  filemapPageMkwrite,
  filemapReadFolio,
  filemapVmOps,
  folioWaitLocked,
  folioWaitWriteback,
  lockFolioMaybeDropMmap,
  maybeUnlockMmapForIo,
  builtinFilemapRetryPaths,
  outRetry,
} from './filemap.js';
export type { FilemapRetryPaths, FilePin } from './filemap-retry-paths.js';
export { Inode } from './inode.js';
export {
  PageCacheTree,
  XA_CHUNK_SHIFT,
  XA_CHUNK_SIZE,
  XaNode,
  XAS_BOUNDS,
  XAS_RESTART,
  XaState,
} from './page-cache-tree.js';
export {
  doPageCacheRa,
  folioClearReadahead,
  folioNrPages,
  folioPages,
  getInitRaSize,
  getNextRaSize,
  MAX_PAGECACHE_ORDER,
  makeRactl,
  pageCacheAsyncRa,
  pageCacheRaOrder,
  pageCacheRaUnbounded,
  pageCacheSyncRa,
  type ReadaheadControl,
  readPages,
  submitRead,
} from './readahead.js';
export { SuperBlock, type SuperBlockOptions } from './super-block.js';
