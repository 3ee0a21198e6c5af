import { PAGE_SIZE } from './entry-bits.js';
import { KernelFault, MemoryLine, UseAfterFreeError, WaitQueue } from '@spf/machine';
import {
  DoubleFreeError,
  InvalidArgumentError,
  InvalidFreeError,
  OutOfMemoryError,
  PhysicalAddressError,
  WildAccessError,
  ZeroPageWriteError,
} from './errors.js';
import { Page, PG } from './page.js';

/** Largest buddy order: 2^18 frames = 1 GiB (`MAX_PAGE_ORDER` is 10 in Linux; we allow gigantic blocks). */
export const MAX_ORDER = 18;

/** The 64-bit entry whose bits 63:32 are `hi` and bits 31:0 are `lo`, as a bigint (one BigInt when `hi` is 0). */
export function entryFromHalves(hi: number, lo: number): bigint {
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** Frame states (one byte per frame). */
export const FrameState = { free: 0, allocated: 1, reserved: 2 } as const;

/** How physical memory is built. */
export type PhysicalMemoryOptions = {
  /** Installed RAM in bytes, a multiple of 4096 (default 1 GiB). */
  readonly size?: number;
  /** MAXPHYADDR, 36 to 52 (default 46). RAM must fit below 2^MAXPHYADDR. */
  readonly maxPhyAddr?: number;
  /** Reserve the shared zero page (default true). Switch off to model a kernel that maps none. */
  readonly zeroPage?: boolean;
  /**
   * Where the memory line of a physical address comes from (default: lines owned by this object). Pass
   * `(pa) => machine.physLine(pa)` to share lines with other code that uses the machine's physical lines.
   */
  readonly lineOf?: (pa: number) => MemoryLine;
  /**
   * KASAN-style quarantine, in frames (default 0 = off): freed blocks stay poisoned in a FIFO until this many
   * frames are waiting, before they go back to the buddy lists, so a stale entry or pointer keeps hitting a
   * free frame for longer instead of a reallocated one. Quarantined frames count as free in `freeCount`, and
   * an allocation that finds no block drains the quarantine first.
   */
  readonly quarantine?: number;
};

const NO_ORDER = -1;

/** Frames of contents per host allocation (see `newContents`). */
const CONTENTS_SLAB_FRAMES = 16;

/**
 * Physical memory: 4 KiB frames with `struct page` state, a buddy allocator for orders 0 to 18, lazily
 * allocated contents, poisoning of freed frames, and the shared zero page.
 *
 * Host cost: about 30 bytes of typed arrays per frame; a frame's 4 KiB of contents exist only once
 * non-zero data has been written to it (a zero write to a frame without contents stores nothing).
 *
 * Poisoning (KASAN-like): freeing a frame drops its contents and records who freed it; any later access
 * to the frame's bytes, to its entries through a page walk, or through a stale {@link Page} object throws
 * `UseAfterFreeError` naming the frame and who freed it. Frames are handed out again in LIFO order, so a
 * stale raw physical address is only caught while its frame is free; stale `Page` objects are always
 * caught (they carry an allocation generation).
 *
 * Frame 0 is reserved (as the BIOS page is on a PC), so physical address 0 is never a valid allocation.
 */
export class PhysicalMemory {
  readonly size: number;
  readonly frames: number;
  readonly maxPhyAddr: number;
  /** Frame number of the shared zero page, or -1 when it is switched off. */
  readonly zeroPfn: number;
  /** Per-frame state ({@link FrameState}). */
  readonly state: Uint8Array;
  /**
   * Per-frame contents as 1024 little-endian 32-bit words, or undefined: all zero, or a frame whose only
   * non-zero data is one 32-bit word (see {@link walkContents}, the way to read a frame's words).
   */
  readonly words: Array<Uint32Array | undefined>;
  /**
   * A frame without `words` whose only non-zero data is one 32-bit word: the word's index (0 to 1023), or -1.
   * Host bookkeeping: a page written once with a byte (the first store of a page fault, the commonest write
   * of all) holds no 4 KiB of host memory, so it costs the host neither an allocation nor a page fault of
   * its own. Any other write to such a frame gives it full contents first.
   */
  private readonly oneWordIdx: Int16Array;
  /** The value of that one word. */
  private readonly oneWordVal: Uint32Array;
  /** `page_ref_count()` per frame. */
  readonly refcounts: Int32Array;
  /** `page_mapcount()` per frame. */
  readonly mapcounts: Int32Array;
  /** `struct page` flags per frame ({@link PG}). */
  readonly flagWords: Uint16Array;
  /** Order of the block a frame heads (free or allocated), or -1 for a frame inside a block. */
  private readonly order: Int8Array;
  /** Allocation generation of each frame (bumped on every allocation). */
  private readonly gens: Uint32Array;
  /** Who last freed each frame: an index into `freers` (0 = never freed). */
  private readonly freedByIdx: Uint32Array;
  private readonly freers: string[] = [''];
  private readonly freerIds = new Map<string, number>();
  /** Buddy free lists: head per order, next/prev per frame. */
  private readonly freeHead = new Int32Array(MAX_ORDER + 1).fill(-1);
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly freeCounts = new Float64Array(MAX_ORDER + 1);
  /** The {@link Page} made for each frame since it was last allocated, by frame number (see {@link page}). */
  private readonly pages: Array<Page | undefined> = [];
  private readonly lines = new Map<number, MemoryLine>();
  private readonly lineOfFn: ((pa: number) => MemoryLine) | null;
  /** Wait queue for `lock_page()` sleepers (one for all pages: the page_waitqueue hash collapsed to one). */
  readonly pageWaitQueue = new WaitQueue('page_waitqueue');
  private free = 0;
  private readonly quarantineLimit: number;
  private readonly quarantinePfn: number[] = [];
  private readonly quarantineOrder: number[] = [];
  private quarantineHead = 0;
  private quarantined = 0;

  constructor(opts: PhysicalMemoryOptions = {}) {
    const size = opts.size ?? 1024 * 1024 * 1024;
    const maxPhyAddr = opts.maxPhyAddr ?? 46;
    if (!Number.isInteger(maxPhyAddr) || maxPhyAddr < 36 || maxPhyAddr > 52) {
      throw new InvalidArgumentError(`maxPhyAddr must be an integer from 36 to 52, got ${maxPhyAddr}`);
    }
    if (!Number.isSafeInteger(size) || size < 4 * PAGE_SIZE || size % PAGE_SIZE !== 0) {
      throw new InvalidArgumentError(
        `memory size must be a multiple of 4096 bytes and at least 4 frames, got ${size}`,
      );
    }
    if (size > 2 ** maxPhyAddr) {
      throw new PhysicalAddressError(
        `memory size 0x${size.toString(16)} does not fit below MAXPHYADDR (2^${maxPhyAddr}); raise maxPhyAddr or shrink memory`,
      );
    }
    if (size / PAGE_SIZE > 2 ** 31) throw new InvalidArgumentError('at most 2^31 frames are supported');
    const quarantine = opts.quarantine ?? 0;
    if (!Number.isSafeInteger(quarantine) || quarantine < 0) {
      throw new InvalidArgumentError(
        `quarantine must be a non-negative integer number of frames, got ${quarantine}`,
      );
    }
    this.quarantineLimit = quarantine;
    this.size = size;
    this.maxPhyAddr = maxPhyAddr;
    const n = size / PAGE_SIZE;
    this.frames = n;
    this.state = new Uint8Array(n);
    this.refcounts = new Int32Array(n);
    this.mapcounts = new Int32Array(n);
    this.flagWords = new Uint16Array(n);
    this.order = new Int8Array(n).fill(NO_ORDER);
    this.gens = new Uint32Array(n);
    this.freedByIdx = new Uint32Array(n);
    this.next = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.words = [];
    for (let i = 0; i < n; i++) this.words.push(undefined);
    this.oneWordIdx = new Int16Array(n).fill(-1);
    this.oneWordVal = new Uint32Array(n);
    this.lineOfFn = opts.lineOf ?? null;
    // Frame 0 reserved; the zero page (if any) is frame 1.
    this.state[0] = FrameState.reserved;
    this.flagWords[0] = PG.reserved;
    this.refcounts[0] = 1;
    let first = 1;
    if (opts.zeroPage ?? true) {
      this.zeroPfn = 1;
      this.state[1] = FrameState.reserved;
      this.flagWords[1] = PG.reserved | PG.zero | PG.uptodate;
      this.refcounts[1] = 1;
      first = 2;
    } else this.zeroPfn = -1;
    // Hand the rest to the buddy allocator in the largest naturally aligned blocks.
    let pfn = first;
    while (pfn < n) {
      let o = 0;
      while (o < MAX_ORDER && pfn % (1 << (o + 1)) === 0 && pfn + (1 << (o + 1)) <= n) o++;
      this.pushFree(pfn, o);
      pfn += 1 << o;
    }
  }

  // ---- buddy allocator ----------------------------------------------------------------------------

  private pushFree(pfn: number, o: number): void {
    const h = this.freeHead[o];
    this.next[pfn] = h;
    this.prev[pfn] = -1;
    if (h >= 0) this.prev[h] = pfn;
    this.freeHead[o] = pfn;
    this.order[pfn] = o;
    this.freeCounts[o]++;
    this.free += 1 << o;
  }

  private removeFree(pfn: number, o: number): void {
    const nx = this.next[pfn];
    const pv = this.prev[pfn];
    if (pv >= 0) this.next[pv] = nx;
    else this.freeHead[o] = nx;
    if (nx >= 0) this.prev[nx] = pv;
    this.order[pfn] = NO_ORDER;
    this.freeCounts[o]--;
    this.free -= 1 << o;
  }

  /** Free frames in total (including frames waiting in the quarantine). */
  get freeCount(): number {
    return this.free + this.quarantined;
  }
  /** Frames freed but still held in the quarantine. */
  get quarantinedCount(): number {
    return this.quarantined;
  }
  /** Returns every quarantined block to the buddy lists. */
  drainQuarantine(): void {
    while (this.quarantineHead < this.quarantinePfn.length) this.releaseOldest();
  }
  private releaseOldest(): void {
    const i = this.quarantineHead++;
    const pfn = this.quarantinePfn[i];
    const order = this.quarantineOrder[i];
    this.quarantined -= 1 << order;
    if (this.quarantineHead === this.quarantinePfn.length) {
      this.quarantinePfn.length = 0;
      this.quarantineOrder.length = 0;
      this.quarantineHead = 0;
    }
    this.mergeFree(pfn, order);
  }
  /** Number of free blocks of each order (index = order), like /proc/buddyinfo. */
  buddyInfo(): number[] {
    return Array.from(this.freeCounts);
  }

  /**
   * Allocates a naturally aligned block of 2^order frames and returns its first frame number, with
   * refcount 1 on the head (`set_page_refcounted()`), zero contents and no flags. Models `__rmqueue_smallest()`
   * and `expand()` in mm/page_alloc.c: take the smallest free block that is large enough, split it, and
   * put the upper halves back on the free lists. Throws {@link OutOfMemoryError} (nothing changes).
   */
  allocFrames(order = 0): number {
    if (!Number.isInteger(order) || order < 0 || order > MAX_ORDER) {
      throw new InvalidArgumentError(`order must be an integer from 0 to ${MAX_ORDER}, got ${order}`);
    }
    let o = order;
    while (o <= MAX_ORDER && this.freeHead[o] < 0) o++;
    if (o > MAX_ORDER && this.quarantined > 0) {
      this.drainQuarantine();
      o = order;
      while (o <= MAX_ORDER && this.freeHead[o] < 0) o++;
    }
    if (o > MAX_ORDER) {
      throw new OutOfMemoryError(
        `out of memory: no free block of order ${order} (${this.free} frames free, fragmented or exhausted); free memory or build a larger PhysicalMemory`,
        order,
      );
    }
    const pfn = this.freeHead[o];
    this.removeFree(pfn, o);
    while (o > order) {
      o--;
      this.pushFree(pfn + (1 << o), o);
    }
    const end = pfn + (1 << order);
    this.state.fill(FrameState.allocated, pfn, end);
    for (let p = pfn; p < end; p++) this.gens[p]++;
    this.flagWords.fill(0, pfn, end);
    this.refcounts.fill(0, pfn, end);
    this.mapcounts.fill(0, pfn, end);
    this.order[pfn] = order;
    this.refcounts[pfn] = 1;
    if (order > 0) this.flagWords[pfn] = PG.head;
    if (pfn < this.pages.length) this.pages[pfn] = undefined;
    return pfn;
  }

  /** `alloc_pages()`: as {@link allocFrames}, returning the head's {@link Page}. */
  allocPages(order = 0): Page {
    return this.page(this.allocFrames(order));
  }

  /**
   * Frees the block of 2^order frames at `pfn` (`__free_pages()` reaching `__free_one_page()` in
   * mm/page_alloc.c): poisons the frames, then merges the block with its free buddies. `who` names the
   * freer in later use-after-free reports. Throws {@link DoubleFreeError} or {@link InvalidFreeError}
   * (nothing changes) when the block is not an allocated block of that order.
   */
  freeFrames(pfn: number, order = 0, who = 'an unnamed caller'): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.frames) {
      throw new PhysicalAddressError(
        `cannot free frame ${pfn}: memory has frames 0 to 0x${(this.frames - 1).toString(16)}`,
      );
    }
    const st = this.state[pfn];
    if (st === FrameState.free) {
      throw new DoubleFreeError(
        `double free of frame 0x${pfn.toString(16)}: already freed by ${this.freedBy(pfn)}; now freed again by ${who}`,
      );
    }
    if (st === FrameState.reserved) {
      throw new InvalidFreeError(
        `frame 0x${pfn.toString(16)} is reserved and can never be freed (by ${who})`,
      );
    }
    if (this.order[pfn] !== order) {
      const actual = this.order[pfn];
      throw new InvalidFreeError(
        actual === NO_ORDER
          ? `frame 0x${pfn.toString(16)} is inside a larger allocated block; free the block's first frame with its order`
          : `frame 0x${pfn.toString(16)} was allocated with order ${actual}, not ${order}; free it with the order it was allocated with`,
      );
    }
    let id = this.freerIds.get(who);
    if (id === undefined) {
      id = this.freers.length;
      this.freers.push(who);
      this.freerIds.set(who, id);
    }
    const end = pfn + (1 << order);
    this.state.fill(FrameState.free, pfn, end);
    this.freedByIdx.fill(id, pfn, end);
    this.oneWordIdx.fill(-1, pfn, end);
    for (let p = pfn; p < end; p++) {
      this.words[p] = undefined;
      if (p < this.pages.length) this.pages[p] = undefined;
    }
    this.order[pfn] = NO_ORDER;
    if (this.quarantineLimit > 0) {
      this.quarantinePfn.push(pfn);
      this.quarantineOrder.push(order);
      this.quarantined += 1 << order;
      while (this.quarantined > this.quarantineLimit) this.releaseOldest();
      return;
    }
    this.mergeFree(pfn, order);
  }

  /** `__free_one_page()`: puts a poisoned block back, merging it with free buddies. */
  private mergeFree(pfn: number, order: number): void {
    let head = pfn;
    let o = order;
    while (o < MAX_ORDER) {
      const buddy = head ^ (1 << o);
      if (buddy >= this.frames || this.state[buddy] !== FrameState.free || this.order[buddy] !== o) break;
      this.removeFree(buddy, o);
      head = Math.min(head, buddy);
      o++;
    }
    this.pushFree(head, o);
  }

  /** `__free_pages(page, order)` for a {@link Page}. */
  freePages(page: Page, order = 0, who?: string): void {
    page.check();
    this.freeFrames(page.pfn, order, who);
  }

  // ---- struct page ------------------------------------------------------------------------------

  /** Whether frame `pfn` is in use (allocated or reserved) with allocation generation `gen`. */
  isLive(pfn: number, gen: number): boolean {
    return this.state[pfn] !== FrameState.free && this.gens[pfn] === gen;
  }

  /** Who freed frame `pfn` last (for reports). */
  freedBy(pfn: number): string {
    const i = this.freedByIdx[pfn];
    return i === 0 ? 'nobody (never allocated)' : this.freers[i];
  }

  /** The allocation order of the block `pfn` heads, or 0 for a frame inside a block. */
  blockOrder(pfn: number): number {
    const o = this.order[pfn];
    return o === NO_ORDER || this.state[pfn] !== FrameState.allocated ? 0 : o;
  }

  /**
   * `pfn_to_page()`: the {@link Page} of an allocated or reserved frame (the same object until the frame is
   * freed). Throws `UseAfterFreeError` for a freed frame and {@link WildAccessError} for one never allocated.
   */
  page(pfn: number): Page {
    let p = this.pages[pfn];
    if (p !== undefined) return p;
    this.checkFrame(pfn, 'pfn_to_page');
    p = new Page(this, pfn, this.gens[pfn]);
    // Fill any gap below first, so the array stays a plain (non-dictionary) array.
    while (this.pages.length < pfn) this.pages.push(undefined);
    this.pages[pfn] = p;
    return p;
  }

  /** `PageTail()`: whether `pfn` is an allocated frame inside a larger block (not its first frame). */
  isTail(pfn: number): boolean {
    return this.state[pfn] === FrameState.allocated && this.order[pfn] === NO_ORDER;
  }

  /** `compound_head()`: the head frame of the allocated block containing `pfn`. */
  compoundHead(pfn: number): number {
    this.checkFrame(pfn, 'compound_head');
    for (let o = 0; o <= MAX_ORDER; o++) {
      const h = pfn - (pfn % (1 << o));
      if (this.order[h] >= o && this.state[h] === FrameState.allocated) return h;
    }
    return pfn;
  }

  /** The shared zero page (`ZERO_PAGE(0)`), or null when switched off. */
  get zeroPage(): Page | null {
    return this.zeroPfn < 0 ? null : this.page(this.zeroPfn);
  }

  /**
   * Throws unless frame `pfn` may be accessed: `UseAfterFreeError` (with who freed it) for a freed frame,
   * {@link WildAccessError} for one that was never allocated or lies beyond RAM.
   */
  checkFrame(pfn: number, what: string): void {
    if (!(pfn >= 0 && pfn < this.frames)) {
      throw new WildAccessError(
        `${what}: frame 0x${pfn.toString(16)} lies beyond installed memory (0x${this.size.toString(16)} bytes)`,
      );
    }
    if (this.state[pfn] === FrameState.free) {
      if (this.freedByIdx[pfn] !== 0) {
        throw new UseAfterFreeError(
          `${what}: frame 0x${pfn.toString(16)} (pa 0x${(pfn * PAGE_SIZE).toString(16)}) was freed by ${this.freers[this.freedByIdx[pfn]]}; this access goes through a stale pointer or page-table entry`,
        );
      }
      throw new WildAccessError(
        `${what}: frame 0x${pfn.toString(16)} (pa 0x${(pfn * PAGE_SIZE).toString(16)}) was never allocated`,
      );
    }
  }

  // ---- contents ---------------------------------------------------------------------------------

  private checkPa(pa: number, len: number): void {
    if (!Number.isSafeInteger(pa) || pa < 0 || pa + len > this.size) {
      throw new PhysicalAddressError(
        `physical address ${typeof pa === 'number' ? `0x${pa.toString(16)}` : String(pa)} (+${len}) is outside memory (0x${this.size.toString(16)} bytes)`,
      );
    }
  }

  private writable(pfn: number, what: string): Uint32Array {
    this.checkFrame(pfn, what);
    if (pfn === this.zeroPfn) {
      throw new ZeroPageWriteError(`${what}: write to the shared zero page (frame 0x${pfn.toString(16)})`);
    }
    let w = this.words[pfn];
    if (w === undefined) {
      w = this.newContents();
      this.words[pfn] = w;
      const i = this.oneWordIdx[pfn];
      if (i >= 0) {
        w[i] = this.oneWordVal[pfn];
        this.oneWordIdx[pfn] = -1;
      }
    }
    return w;
  }

  /**
   * The contents of frame `pfn` as 1024 words for a reader that needs them all (a page walk reading a
   * table): `words[pfn]`, after giving a frame that holds only one non-zero word full contents; undefined
   * for an all-zero frame. Host bookkeeping: it models no kernel function.
   */
  walkContents(pfn: number): Uint32Array | undefined {
    const w = this.words[pfn];
    if (w !== undefined || this.oneWordIdx[pfn] < 0) return w;
    return this.writable(pfn, 'read');
  }

  /**
   * Fresh zeroed contents for one frame: a view into a shared slab of {@link CONTENTS_SLAB_FRAMES} frames
   * (one host allocation per slab instead of one per frame, which dominated write faults with data).
   * Views are never reused: a slab is reclaimed by the host GC once none of its frames holds contents.
   */
  private newContents(): Uint32Array {
    if (this.slab === null || this.slabUsed === CONTENTS_SLAB_FRAMES) {
      this.slab = new ArrayBuffer(CONTENTS_SLAB_FRAMES * PAGE_SIZE);
      this.slabUsed = 0;
    }
    return new Uint32Array(this.slab, PAGE_SIZE * this.slabUsed++, 1024);
  }
  private slab: ArrayBuffer | null = null;
  private slabUsed = 0;

  /** Whether frame `pfn` holds host memory for contents (it was written with non-zero data). */
  hasContents(pfn: number): boolean {
    return this.words[pfn] !== undefined || this.oneWordIdx[pfn] >= 0;
  }

  /** Reads one byte. */
  read8(pa: number): number {
    this.checkPa(pa, 1);
    const pfn = Math.floor(pa / PAGE_SIZE);
    this.checkFrame(pfn, 'read');
    const w = this.words[pfn];
    const off = pa % PAGE_SIZE;
    if (w === undefined) {
      return this.oneWordIdx[pfn] === off >>> 2 ? (this.oneWordVal[pfn] >>> ((off & 3) * 8)) & 0xff : 0;
    }
    return (w[off >>> 2] >>> ((off & 3) * 8)) & 0xff;
  }

  /** Writes one byte (a zero byte to a frame without contents stores nothing). */
  write8(pa: number, value: number): void {
    this.checkPa(pa, 1);
    const pfn = Math.floor(pa / PAGE_SIZE);
    const off = pa % PAGE_SIZE;
    const sh = (off & 3) * 8;
    if (this.words[pfn] === undefined) {
      const i = off >>> 2;
      const idx = this.oneWordIdx[pfn];
      if ((value & 0xff) === 0 && idx !== i) {
        this.checkFrame(pfn, 'write');
        if (pfn === this.zeroPfn) throw new ZeroPageWriteError('write to the shared zero page');
        return;
      }
      if (idx < 0 || idx === i) {
        // The frame's only non-zero word: no host memory for the page (see `oneWordIdx`).
        this.checkFrame(pfn, 'write');
        if (pfn === this.zeroPfn) {
          throw new ZeroPageWriteError(`write: write to the shared zero page (frame 0x${pfn.toString(16)})`);
        }
        const v = (((idx === i ? this.oneWordVal[pfn] : 0) & ~(0xff << sh)) | ((value & 0xff) << sh)) >>> 0;
        this.oneWordVal[pfn] = v;
        this.oneWordIdx[pfn] = v === 0 ? -1 : i;
        return;
      }
    }
    const w = this.writable(pfn, 'write');
    w[off >>> 2] = (w[off >>> 2] & ~(0xff << sh)) | ((value & 0xff) << sh);
  }

  /** Reads `len` bytes starting at `pa` (may cross frames). */
  readBytes(pa: number, len: number): Uint8Array {
    this.checkPa(pa, len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const pfn = Math.floor(a / PAGE_SIZE);
      const off = a % PAGE_SIZE;
      const n = Math.min(len - done, PAGE_SIZE - off);
      this.checkFrame(pfn, 'read');
      const w = this.words[pfn];
      if (w !== undefined) out.set(new Uint8Array(w.buffer, w.byteOffset + off, n), done);
      else if (this.oneWordIdx[pfn] >= 0) {
        const at = this.oneWordIdx[pfn] * 4;
        for (let k = 0; k < 4; k++) {
          if (at + k >= off && at + k < off + n)
            out[done + at + k - off] = (this.oneWordVal[pfn] >>> (8 * k)) & 0xff;
        }
      }
      done += n;
    }
    return out;
  }

  /** Writes `data` at `pa` (may cross frames); all-zero chunks to frames without contents store nothing. */
  writeBytes(pa: number, data: Uint8Array): void {
    this.checkPa(pa, data.length);
    // Check every frame first so that a failed write changes nothing.
    for (let a = pa; a < pa + data.length; a = (Math.floor(a / PAGE_SIZE) + 1) * PAGE_SIZE) {
      const pfn = Math.floor(a / PAGE_SIZE);
      this.checkFrame(pfn, 'write');
      if (pfn === this.zeroPfn) throw new ZeroPageWriteError('write to the shared zero page');
    }
    let done = 0;
    while (done < data.length) {
      const a = pa + done;
      const pfn = Math.floor(a / PAGE_SIZE);
      const off = a % PAGE_SIZE;
      const n = Math.min(data.length - done, PAGE_SIZE - off);
      const chunk = data.subarray(done, done + n);
      if (this.words[pfn] !== undefined || this.oneWordIdx[pfn] >= 0 || chunk.some((b) => b !== 0)) {
        const w = this.writable(pfn, 'write');
        new Uint8Array(w.buffer, w.byteOffset + off, n).set(chunk);
      }
      done += n;
    }
  }

  /** Throws unless `pa` starts an 8-byte-aligned 64-bit access (an entry) inside memory. */
  private checkEntryPa(pa: number): void {
    this.checkPa(pa, 8);
    if (pa % 8 !== 0)
      throw new InvalidArgumentError(`64-bit access at 0x${pa.toString(16)} is not 8-byte aligned`);
  }

  /**
   * The checks of every 64-bit read ({@link read64}, {@link walkReadLow}), in their order: `pa` is an
   * aligned entry inside memory, and its frame may be read. Returns the frame's contents, undefined when
   * the frame holds only zeroes or one non-zero word (`oneWordAt`). Host bookkeeping: it models no kernel
   * function.
   */
  private entryWords(pa: number): Uint32Array | undefined {
    this.checkEntryPa(pa);
    const pfn = Math.floor(pa / PAGE_SIZE);
    this.checkFrame(pfn, 'read');
    return this.words[pfn];
  }

  /** Word `i` of a frame without `words`: its one non-zero word, or 0. */
  private oneWordAt(pa: number, i: number): number {
    const pfn = Math.floor(pa / PAGE_SIZE);
    return this.oneWordIdx[pfn] === i ? this.oneWordVal[pfn] : 0;
  }

  /** Reads the aligned 64-bit value at `pa` (an entry). */
  read64(pa: number): bigint {
    const lo = this.read64Low(pa);
    return entryFromHalves(this.walkHigh, lo);
  }

  /**
   * Reads the entry at `pa` for a page walk: like {@link read64}, but a frame beyond RAM is a
   * {@link WildAccessError} (a kernel bug: a table link points nowhere) rather than a bad argument.
   */
  walkRead(pa: number): bigint {
    this.checkFrame(Math.floor(pa / PAGE_SIZE), 'page walk');
    return this.read64(pa);
  }

  /**
   * {@link read64} without a BigInt: the same checks and errors; returns bits 31:0 of the entry at `pa` and
   * leaves bits 63:32 in {@link walkHigh}.
   */
  read64Low(pa: number): number {
    const w = this.entryWords(pa);
    const i = (pa % PAGE_SIZE) >>> 2;
    if (w === undefined) {
      this.walkHigh = this.oneWordAt(pa, i + 1);
      return this.oneWordAt(pa, i);
    }
    this.walkHigh = w[i + 1];
    return w[i];
  }

  /**
   * Sets `bits` (not zero, within bits 31:0) in the entry at `pa`: {@link write64} of the entry with those bits
   * ORed in, with the same checks and errors, without a BigInt (the hardware's A/D update of a page walk).
   */
  setLowBits(pa: number, bits: number): void {
    this.checkEntryPa(pa);
    const w = this.writable(Math.floor(pa / PAGE_SIZE), 'write');
    const i = (pa % PAGE_SIZE) >>> 2;
    w[i] = (w[i] | bits) >>> 0;
  }

  /** High 32 bits of the entry the last {@link walkReadLow} or {@link read64Low} read (read it right after). */
  walkHigh = 0;

  /**
   * {@link walkRead} without a BigInt: returns bits 31:0 of the entry at `pa` and leaves bits 63:32 in
   * {@link walkHigh}. The same checks, in the same order, with the same errors.
   */
  walkReadLow(pa: number): number {
    this.checkFrame(Math.floor(pa / PAGE_SIZE), 'page walk');
    return this.read64Low(pa);
  }

  /** Writes the aligned 64-bit value at `pa`. */
  write64(pa: number, value: bigint): void {
    this.checkEntryPa(pa);
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw new InvalidArgumentError(`value ${value} is not an unsigned 64-bit integer`);
    }
    const pfn = Math.floor(pa / PAGE_SIZE);
    if (this.words[pfn] === undefined && this.oneWordIdx[pfn] < 0 && value === 0n) {
      this.checkFrame(pfn, 'write');
      if (pfn === this.zeroPfn) throw new ZeroPageWriteError('write to the shared zero page');
      return;
    }
    const w = this.writable(pfn, 'write');
    const i = (pa % PAGE_SIZE) >>> 2;
    w[i] = Number(value & 0xffff_ffffn);
    w[i + 1] = Number(value >> 32n);
  }

  /** `clear_page()`: zeroes a frame (drops its contents). */
  zeroFrame(pfn: number): void {
    this.checkFrame(pfn, 'clear_page');
    if (pfn === this.zeroPfn) return;
    this.words[pfn] = undefined;
    this.oneWordIdx[pfn] = -1;
  }

  /** `copy_page()`: copies frame `src` to frame `dst`. */
  copyFrame(dst: number, src: number): void {
    this.checkFrame(src, 'copy_page (source)');
    this.checkFrame(dst, 'copy_page (destination)');
    const s = this.words[src];
    if (s === undefined) {
      const i = this.oneWordIdx[src];
      if (i >= 0 && dst === this.zeroPfn) this.writable(dst, 'copy_page'); // throws ZeroPageWriteError
      if (dst !== this.zeroPfn) {
        this.words[dst] = undefined;
        this.oneWordIdx[dst] = i;
        this.oneWordVal[dst] = this.oneWordVal[src];
      }
      return;
    }
    this.writable(dst, 'copy_page').set(s);
  }

  // ---- memory lines -----------------------------------------------------------------------------

  /** The memory line (64-byte coherence unit) holding physical address `pa`. */
  lineOf(pa: number): MemoryLine {
    if (this.lineOfFn !== null) return this.lineOfFn(pa);
    const key = Math.floor(pa / 64);
    let l = this.lines.get(key);
    if (l === undefined) {
      l = MemoryLine.physical(key * 64);
      this.lines.set(key, l);
    }
    return l;
  }
}

/** Raised by kernel-form helpers on misuse of a page (for example unlocking a page that is not locked). */
export class PageStateError extends KernelFault {
  override name = 'PageStateError';
  constructor(message: string) {
    super('page-state', message);
  }
}
