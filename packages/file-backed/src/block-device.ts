import { block, type Kernel, MemoryLine, raiseDeviceIrq, rmwEffect, WaitQueue, wake } from '@spf/machine';
import { FileBackedConfigError } from './errors.js';

/** Options of a {@link BlockDevice}. */
export interface BlockDeviceOptions {
  /** Name in reports (`vda`). */
  readonly name?: string;
  /** Device numbers /proc/PID/maps prints (default 254:0, a virtio disk). */
  readonly major?: number;
  readonly minor?: number;
  /**
   * Time from submission to the completion interrupt of one request, in ns. Default 80 us (the cost
   * model's `diskRead`: a 4 KiB random read of a datacenter NVMe SSD).
   */
  readonly latencyNs?: number;
  /** Added per 4 KiB page of a request (transfer time), in ns. Default 1000 (about 4 GB/s). */
  readonly perPageNs?: number;
  /** Requests the device accepts at once (`nr_requests`/tags); more submitters sleep. Default 32. */
  readonly queueDepth?: number;
  /** /sys/block/<dev>/queue/read_ahead_kb: the default `ra_pages` of files on it. Default 128. */
  readonly readAheadKb?: number;
}

/** What a completed request does (in interrupt context on the submitting CPU): `end_io` of the bio. */
export type EndIo = () => Kernel<void>;

/**
 * A block device with a request queue (models the blk-mq path a bio takes, reduced to what the time of a
 * fault depends on): `submit()` takes a tag (sleeping while `queueDepth` requests are in flight), starts the
 * request and returns at once; the device completes it `latencyNs + pages * perPageNs` later with an
 * interrupt on the submitting CPU (blk-mq completes where it was submitted), whose handler runs the
 * request's `end_io` (`folio_end_read()`: mark uptodate, unlock, wake waiters) and frees the tag.
 *
 * Simplifications: no merging, no scheduler, no per-CPU hardware queues; every request costs the same
 * latency whatever its position on the disk.
 */
export class BlockDevice {
  readonly name: string;
  readonly major: number;
  readonly minor: number;
  readonly latencyNs: number;
  readonly perPageNs: number;
  readonly queueDepth: number;
  /** read_ahead_kb of the queue. */
  readAheadKb: number;
  /** Requests in flight. */
  inflight = 0;
  /** Counters: requests and pages read and written. */
  readonly stats = { reads: 0, writes: 0, pagesRead: 0, pagesWritten: 0, tagWaits: 0 };
  readonly line: MemoryLine;
  private readonly tagWait: WaitQueue;
  private readonly idleWait: WaitQueue;

  constructor(opts: BlockDeviceOptions = {}) {
    this.name = opts.name ?? 'vda';
    this.major = opts.major ?? 254;
    this.minor = opts.minor ?? 0;
    this.latencyNs = opts.latencyNs ?? 80_000;
    this.perPageNs = opts.perPageNs ?? 1000;
    this.queueDepth = opts.queueDepth ?? 32;
    this.readAheadKb = opts.readAheadKb ?? 128;
    for (const [k, v] of [
      ['latencyNs', this.latencyNs],
      ['perPageNs', this.perPageNs],
      ['readAheadKb', this.readAheadKb],
    ] as const) {
      if (!Number.isFinite(v) || v < 0) {
        throw new FileBackedConfigError(`block device ${k} is ${v}; give a finite number >= 0`);
      }
    }
    if (!Number.isInteger(this.queueDepth) || this.queueDepth < 1) {
      throw new FileBackedConfigError(`block device queueDepth is ${this.queueDepth}; give an integer >= 1`);
    }
    this.line = new MemoryLine(`blkdev:${this.name}`);
    this.tagWait = new WaitQueue(`${this.name}: blk_mq_get_tag`);
    this.idleWait = new WaitQueue(`${this.name}: idle`);
  }

  /** `ra_pages` for files on this device (read_ahead_kb / 4). */
  get raPages(): number {
    return Math.floor(this.readAheadKb / 4);
  }

  /** Time one request of `pages` pages takes. */
  requestNs(pages: number): number {
    return this.latencyNs + pages * this.perPageNs;
  }

  /**
   * Sleeps until no request is in flight. Not a kernel interface: what the conformance harness does after
   * each op of a replay script (it polls /sys/dev/block/<dev>/inflight until both counts are 0), so that
   * the next op never races I/O an earlier one started (readahead completing page by page).
   */
  *waitIdle(): Kernel<void> {
    if (this.inflight === 0) return;
    yield* block(this.idleWait, () => this.inflight === 0, `${this.name}: wait for idle`);
  }

  /**
   * Models `submit_bio()` down to the driver: waits for a free tag, then starts a request of `pages` pages
   * and returns; `endIo` runs in the completion interrupt on this CPU.
   */
  *submit(op: 'read' | 'write', pages: number, endIo: EndIo): Kernel<void> {
    yield rmwEffect(this.line, 'blk_mq_get_tag');
    if (this.inflight >= this.queueDepth) {
      this.stats.tagWaits++;
      while (this.inflight >= this.queueDepth) {
        yield* block(this.tagWait, () => this.inflight < this.queueDepth, 'blk_mq_get_tag');
        yield rmwEffect(this.line, 'blk_mq_get_tag');
      }
    }
    this.inflight++;
    if (op === 'read') {
      this.stats.reads++;
      this.stats.pagesRead += pages;
    } else {
      this.stats.writes++;
      this.stats.pagesWritten += pages;
    }
    const dev = this;
    yield* raiseDeviceIrq(
      this.requestNs(pages),
      function* () {
        yield* endIo();
        yield rmwEffect(dev.line, 'blk_mq_put_tag');
        dev.inflight--;
        yield* wake(dev.tagWait, 1);
        if (dev.inflight === 0) yield* wake(dev.idleWait, Number.POSITIVE_INFINITY);
      },
      `${this.name} ${op} completion`,
    );
  }
}
