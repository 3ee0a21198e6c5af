/**
 * The ready queue of the discrete-event (timed) policy: a binary min-heap of CPU ids keyed by the simulated
 * time at which each CPU's next step can begin, with ties going to the CPU of lower `rank` (the CPU id, or
 * a seeded permutation of the ids for a varied timed run). Setting or removing a CPU costs O(log CPUs).
 *
 * The keys and ranks are stored by heap position beside the ids (not by CPU id), so a sift compares
 * neighbouring array slots instead of following each id to its key: the order is the same (key, then rank;
 * ranks are distinct, so the minimum is always one CPU), only the host memory traffic changes.
 */
export class ReadyHeap {
  /** CPU id at each heap position. */
  private readonly heap: Int32Array;
  /** Ready time of the CPU at each heap position. */
  private readonly hkey: Float64Array;
  /** Rank of the CPU at each heap position. */
  private readonly hrank: Int32Array;
  /** Heap position of each CPU id, or -1. */
  private readonly pos: Int32Array;
  private count = 0;

  constructor(
    cpus: number,
    /** Tie-break order: of two CPUs ready at the same time, the one with the lower rank is first. */
    private readonly rank: Int32Array,
  ) {
    this.heap = new Int32Array(cpus);
    this.hkey = new Float64Array(cpus);
    this.hrank = new Int32Array(cpus);
    this.pos = new Int32Array(cpus).fill(-1);
  }

  /** Number of CPUs in the heap. */
  get size(): number {
    return this.count;
  }

  /** The ready time of the CPU at heap position `i` (0 is the top; call only when `size > i`). */
  keyAt(i: number): number {
    return this.hkey[i];
  }

  /** The tie-break rank of the CPU at heap position `i`. */
  rankAt(i: number): number {
    return this.hrank[i];
  }

  /** The tie-break rank of CPU `id`. */
  rankOf(id: number): number {
    return this.rank[id];
  }

  /** The CPU that steps next (call only when `size > 0`). */
  top(): number {
    return this.heap[0];
  }

  /** Inserts `id` with ready time `key`, or moves it to that key. */
  set(id: number, key: number): void {
    const i = this.pos[id];
    if (i < 0) {
      this.siftUp(this.count++, id, key, this.rank[id]);
      return;
    }
    const old = this.hkey[i];
    if (key < old) this.siftUp(i, id, key, this.hrank[i]);
    else if (key > old) this.siftDown(i, id, key, this.hrank[i]);
  }

  /** Removes `id` if it is in the heap. */
  remove(id: number): void {
    const i = this.pos[id];
    if (i < 0) return;
    const n = --this.count;
    this.pos[id] = -1;
    if (i === n) return;
    const last = this.heap[n];
    const k = this.hkey[n];
    const r = this.hrank[n];
    // The last entry fills the hole: it moves up or down from there (at most one of the two does anything).
    const p = (i - 1) >> 1;
    if (i > 0 && (k < this.hkey[p] || (k === this.hkey[p] && r < this.hrank[p]))) this.siftUp(i, last, k, r);
    else this.siftDown(i, last, k, r);
  }

  /** Places `id` (key `k`, rank `r`) at position `i` or above, moving larger parents down. */
  private siftUp(i: number, id: number, k: number, r: number): void {
    const heap = this.heap;
    const hkey = this.hkey;
    const hrank = this.hrank;
    const pos = this.pos;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = hkey[p];
      if (pk < k || (pk === k && hrank[p] < r)) break;
      const pid = heap[p];
      heap[i] = pid;
      hkey[i] = pk;
      hrank[i] = hrank[p];
      pos[pid] = i;
      i = p;
    }
    heap[i] = id;
    hkey[i] = k;
    hrank[i] = r;
    pos[id] = i;
  }

  /** Places `id` (key `k`, rank `r`) at position `i` or below, moving smaller children up. */
  private siftDown(i: number, id: number, k: number, r: number): void {
    const heap = this.heap;
    const hkey = this.hkey;
    const hrank = this.hrank;
    const pos = this.pos;
    const size = this.count;
    for (;;) {
      let m = 2 * i + 1;
      if (m >= size) break;
      let mk = hkey[m];
      let mr = hrank[m];
      const rr = m + 1;
      if (rr < size) {
        const rk = hkey[rr];
        if (rk < mk || (rk === mk && hrank[rr] < mr)) {
          m = rr;
          mk = rk;
          mr = hrank[rr];
        }
      }
      if (mk > k || (mk === k && mr > r)) break;
      const mid = heap[m];
      heap[i] = mid;
      hkey[i] = mk;
      hrank[i] = mr;
      pos[mid] = i;
      i = m;
    }
    heap[i] = id;
    hkey[i] = k;
    hrank[i] = r;
    pos[id] = i;
  }
}
