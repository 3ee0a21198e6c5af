/**
 * The ready queue of the discrete-event (timed) policy: a binary min-heap of CPU ids keyed by the simulated
 * time at which each CPU's next step can begin, with ties going to the CPU of lower `rank` (the CPU id, or
 * a seeded permutation of the ids for a varied timed run). Setting or removing a CPU costs O(log CPUs).
 */
export class ReadyHeap {
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;
  private readonly key: Float64Array;
  private count = 0;

  constructor(
    cpus: number,
    /** Tie-break order: of two CPUs ready at the same time, the one with the lower rank is first. */
    private readonly rank: Int32Array,
  ) {
    this.heap = new Int32Array(cpus);
    this.pos = new Int32Array(cpus).fill(-1);
    this.key = new Float64Array(cpus);
  }

  /** Number of CPUs in the heap. */
  get size(): number {
    return this.count;
  }

  /** The CPU that steps next (call only when `size > 0`). */
  top(): number {
    return this.heap[0];
  }

  /** Inserts `id` with ready time `key`, or moves it to that key. */
  set(id: number, key: number): void {
    const heap = this.heap;
    const pos = this.pos;
    let i = pos[id];
    if (i < 0) {
      i = this.count++;
      heap[i] = id;
      pos[id] = i;
      this.key[id] = key;
      this.siftUp(i);
      return;
    }
    const old = this.key[id];
    this.key[id] = key;
    if (key < old) this.siftUp(i);
    else if (key > old) this.siftDown(i);
  }

  /** Removes `id` if it is in the heap. */
  remove(id: number): void {
    const i = this.pos[id];
    if (i < 0) return;
    const last = this.heap[--this.count];
    this.pos[id] = -1;
    if (i === this.count) return;
    this.heap[i] = last;
    this.pos[last] = i;
    this.siftUp(i);
    this.siftDown(this.pos[last]);
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a];
    const kb = this.key[b];
    return ka < kb || (ka === kb && this.rank[a] < this.rank[b]);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const id = heap[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pid = heap[p];
      if (!this.less(id, pid)) break;
      heap[i] = pid;
      pos[pid] = i;
      i = p;
    }
    heap[i] = id;
    pos[id] = i;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const pos = this.pos;
    const keys = this.key;
    const rank = this.rank;
    const size = this.count;
    const id = heap[i];
    const k = keys[id];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      let m = l;
      let mid = heap[l];
      let mk = keys[mid];
      const r = l + 1;
      if (r < size) {
        const rid = heap[r];
        const rk = keys[rid];
        if (rk < mk || (rk === mk && rank[rid] < rank[mid])) {
          m = r;
          mid = rid;
          mk = rk;
        }
      }
      if (mk > k || (mk === k && rank[mid] > rank[id])) break;
      heap[i] = mid;
      pos[mid] = i;
      i = m;
    }
    heap[i] = id;
    pos[id] = i;
  }
}
