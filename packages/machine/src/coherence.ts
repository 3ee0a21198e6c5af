import type { CostModel } from './cost-model.js';
import { EffectKind, type MemoryEffect } from './effects.js';
import type { MemoryLine } from './memory-line.js';
import type { Prng } from './prng.js';

/**
 * The machine's cache-coherence cost model: a MESI-like state per {@link MemoryLine} (the CPU holding it
 * modified or exclusive, and the CPUs sharing it) and the latency of each access from the {@link CostModel}.
 * A hit costs an L1 access; reading a line another CPU modified costs a cache-to-cache transfer (more across
 * sockets); a store or locked RMW needs the line exclusive and invalidates every other copy; transfers of one
 * line are serialised through its `busyUntil`, so contention emerges from the access pattern.
 *
 * A line's state belongs to one machine (its `epoch`) and is reset when another machine first touches it,
 * so kernel objects can be reused across runs.
 */
export class Coherence {
  private nextLineId = 0;

  constructor(
    private readonly cost: CostModel,
    private readonly cpuCount: number,
    /** The machine this state belongs to. */
    private readonly epoch: number,
    /** Seeded latency jitter (see `timed()`), or null for the cost model's latencies exactly. */
    private readonly jitter: Prng | null,
  ) {}

  /** Prepares `line` for its first access on this machine (assigns its id, clears its state). */
  adopt(line: MemoryLine): void {
    if (line.epoch !== this.epoch) {
      line.epoch = this.epoch;
      line.id = this.nextLineId++;
      line.owner = -1;
      line.dirty = false;
      line.sharers = null;
      line.sharerCount = 0;
      line.busyUntil = 0;
    }
  }

  /**
   * Performs the access `e` of CPU `me` starting at simulated time `start`: updates the line's state and
   * returns the CPU's clock when the access completes.
   */
  access(me: number, start: number, e: MemoryEffect): number {
    const line = e.line;
    const cost = this.cost;
    this.adopt(line);
    if (e.kind === EffectKind.Read) {
      if (line.owner === me) return start + cost.l1Hit;
      if (line.owner >= 0) {
        const lat = this.jittered(line.dirty ? this.transferCost(me, line.owner) : cost.llcHit);
        const s = start > line.busyUntil ? start : line.busyUntil;
        line.busyUntil = s + lat;
        this.addSharer(line, line.owner);
        this.addSharer(line, me);
        line.owner = -1;
        line.dirty = false;
        return s + lat;
      }
      if (line.sharers !== null && (line.sharers[me >>> 5] & (1 << (me & 31))) !== 0)
        return start + cost.l1Hit;
      if (line.sharerCount > 0) {
        this.addSharer(line, me);
        return start + this.jittered(cost.llcHit);
      }
      line.owner = me;
      line.dirty = false;
      return start + this.jittered(cost.dram);
    }
    line.version++;
    let extra = 0;
    if (e.kind === EffectKind.Rmw) {
      line.rmws++;
      extra = cost.atomicExtra;
    }
    let end: number;
    if (line.owner === me) {
      end = start + cost.l1Hit + extra;
    } else {
      let lat: number;
      if (line.owner >= 0) lat = this.transferCost(me, line.owner);
      else if (line.sharerCount > 0) {
        const onlyMe = line.sharerCount === 1 && (line.sharers![me >>> 5] & (1 << (me & 31))) !== 0;
        lat = onlyMe ? cost.l1Hit : this.invalidateCost(me, line);
      } else lat = cost.dram;
      if (this.jitter !== null && lat > cost.l1Hit) lat = this.jittered(lat);
      const s = start > line.busyUntil ? start : line.busyUntil;
      line.busyUntil = s + lat;
      end = s + lat + extra;
      if (line.sharers !== null) line.sharers.fill(0);
      line.sharerCount = 0;
    }
    line.owner = me;
    line.dirty = true;
    return end;
  }

  /**
   * Whether a read of `line` by CPU `me` would hit in its L1 now (it owns the line or shares it): the
   * read would change no coherence state and cost `l1Hit`.
   */
  readHits(me: number, line: MemoryLine): boolean {
    if (line.epoch !== this.epoch) return false;
    if (line.owner === me) return true;
    return line.owner < 0 && line.sharers !== null && (line.sharers[me >>> 5] & (1 << (me & 31))) !== 0;
  }

  /**
   * `lat` plus the seeded jitter: a uniform integer from 0 to lat/8 ns, drawn in the order the accesses are
   * performed. With seed 0 exactly `lat`.
   */
  private jittered(lat: number): number {
    const j = this.jitter;
    return j === null ? lat : lat + j.below((lat >>> 3) + 1);
  }

  private transferCost(a: number, b: number): number {
    const per = this.cost.cpusPerSocket;
    return Math.floor(a / per) === Math.floor(b / per)
      ? this.cost.lineTransfer
      : this.cost.crossSocketTransfer;
  }

  private invalidateCost(me: number, line: MemoryLine): number {
    const per = this.cost.cpusPerSocket;
    if (per >= this.cpuCount) return this.cost.lineTransfer;
    const mySocket = Math.floor(me / per);
    const s = line.sharers!;
    for (let w = 0; w < s.length; w++) {
      let bits = s[w];
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        if (Math.floor((w * 32 + b) / per) !== mySocket) return this.cost.crossSocketTransfer;
      }
    }
    return this.cost.lineTransfer;
  }

  private addSharer(line: MemoryLine, cpu: number): void {
    if (line.sharers === null) line.sharers = new Uint32Array((this.cpuCount + 31) >>> 5);
    const w = cpu >>> 5;
    const bit = 1 << (cpu & 31);
    if ((line.sharers[w] & bit) === 0) {
      line.sharers[w] |= bit;
      line.sharerCount++;
    }
  }
}
