/**
 * The steady pure spinners of a timed run, in the order the timed policy steps them.
 *
 * A CPU whose task waits in a pure spin-wait ({@link spinWaitEffect}) on a line that nobody has written since
 * its code last ran, and whose next re-read hits in its L1, repeats two steps forever: the PAUSE (`pause` ns)
 * and the re-read (`l1Hit` ns), without running any kernel code. Each of the two steps therefore recurs with
 * the same period P = pause + l1Hit. When every step of a set of such CPUs lies within one period of the
 * earliest (comparing by time, then by tie-break rank, exactly as the ready heap does), the timed policy steps
 * them in a fixed rotation: the earliest step is taken, recurs P later, and is then later than every other step
 * of the set (which were all earlier than the first plus P) and earlier than the next one plus P, so the set
 * keeps the property and the order is the same rotation again and again.
 *
 * The ring holds that rotation: two entries per CPU (its next two steps), each with the simulated time at
 * which it begins. The machine compares the ring's head with the ready heap's top and takes the earlier, so
 * the schedule is exactly the one the heap alone would give; a ring step costs a few array operations instead
 * of a heap update and the machine's general step. A CPU is added only when its two steps keep the rotation
 * property (`tryAdd` checks it) and leaves the ring (`remove`) as soon as anything could change its next step:
 * a write of its line, an IPI, a wake-up or a new task on its CPU.
 */
export class SpinRing {
  /** CPU of each entry; entries `head`, `head + 1`, ... (cyclically) are in stepping order. */
  private cpu: Int32Array;
  /** Simulated time at which each entry's step begins. */
  private time: Float64Array;
  /** Index of the next entry to step. */
  private head = 0;
  /** Number of entries (twice the number of CPUs in the ring). */
  size = 0;
  /** Whether each CPU is in the ring (2 while `removeWhere` has asked about it). */
  private readonly member: Uint8Array;
  /** Spare arrays for re-ordering the entries. */
  private scratchCpu: Int32Array;
  private scratchTime: Float64Array;

  constructor(
    cpus: number,
    /** The ready heap's tie-break rank of each CPU. */
    private readonly rank: Int32Array,
    /** The period of a steady spin iteration: pause + l1Hit. */
    readonly period: number,
  ) {
    this.cpu = new Int32Array(2 * cpus);
    this.time = new Float64Array(2 * cpus);
    this.scratchCpu = new Int32Array(2 * cpus);
    this.scratchTime = new Float64Array(2 * cpus);
    this.member = new Uint8Array(cpus);
  }

  /** Whether `cpu` is in the ring. */
  has(cpu: number): boolean {
    return this.member[cpu] !== 0;
  }

  /** The CPU whose step comes next in the ring (call only when `size > 0`). */
  headCpu(): number {
    return this.cpu[this.head];
  }

  /** The simulated time at which the ring's next step begins (call only when `size > 0`). */
  headTime(): number {
    return this.time[this.head];
  }

  /** The ring's next step was taken: it recurs one period later, after every other entry. */
  advance(): void {
    const h = this.head;
    this.time[h] += this.period;
    this.head = h + 1 === this.size ? 0 : h + 1;
  }

  /**
   * Adds `cpu`, whose next step begins at `first` and the one after at `second` (`first < second < first +
   * period`), if the ring still steps in a fixed rotation with it; returns whether it was added.
   */
  tryAdd(cpu: number, first: number, second: number): boolean {
    this.linearize();
    const n = this.size;
    const r = this.rank[cpu];
    const i = this.position(first, r, 0);
    const j = this.position(second, r, i);
    // After the insertion the earliest entry is the new first one or the old head, the latest the new second
    // one or the old tail; every step must begin before the earliest plus one period (by time, then rank).
    const t = this.time;
    const c = this.cpu;
    const minT = i === 0 ? first : t[0];
    const minR = i === 0 ? r : this.rank[c[0]];
    const maxT = j === n ? second : t[n - 1];
    const maxR = j === n ? r : this.rank[c[n - 1]];
    if (!this.before(maxT, maxR, minT + this.period, minR)) return false;
    // Shift [j, n) up by two and [i, j) up by one, then place the two entries.
    c.copyWithin(j + 2, j, n);
    t.copyWithin(j + 2, j, n);
    c.copyWithin(i + 1, i, j);
    t.copyWithin(i + 1, i, j);
    c[i] = cpu;
    t[i] = first;
    c[j + 1] = cpu;
    t[j + 1] = second;
    this.size = n + 2;
    this.member[cpu] = 1;
    return true;
  }

  /** Removes `cpu` from the ring (if it is in it). */
  remove(cpu: number): void {
    if (this.member[cpu] === 0) return;
    this.member[cpu] = 0;
    this.compact();
  }

  /** Removes every CPU for which `leave(cpu)` is true (asked once per CPU in the ring) and returns them. */
  removeWhere(leave: (cpu: number) => boolean): number[] {
    const out: number[] = [];
    const c = this.cpu;
    for (let i = 0; i < this.size; i++) {
      const id = c[i];
      if (this.member[id] !== 1) continue;
      if (leave(id)) {
        this.member[id] = 0;
        out.push(id);
      } else this.member[id] = 2; // asked: stays
    }
    for (let i = 0; i < this.size; i++) if (this.member[c[i]] === 2) this.member[c[i]] = 1;
    if (out.length > 0) this.compact();
    return out;
  }

  /** Drops the entries of CPUs that are no longer members, keeping the others in stepping order. */
  private compact(): void {
    this.linearize();
    const c = this.cpu;
    const t = this.time;
    const n = this.size;
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (this.member[c[i]] === 0) continue;
      c[k] = c[i];
      t[k++] = t[i];
    }
    this.size = k;
  }

  /** Moves the entries so that the head is at index 0 (the stepping order is unchanged). */
  private linearize(): void {
    const h = this.head;
    if (h === 0) return;
    const n = this.size;
    const sc = this.scratchCpu;
    const st = this.scratchTime;
    sc.set(this.cpu.subarray(h, n), 0);
    sc.set(this.cpu.subarray(0, h), n - h);
    st.set(this.time.subarray(h, n), 0);
    st.set(this.time.subarray(0, h), n - h);
    this.scratchCpu = this.cpu;
    this.scratchTime = this.time;
    this.cpu = sc;
    this.time = st;
    this.head = 0;
  }

  /** The first index from `from` (entries linearized) whose entry comes after a step at (t, r). */
  private position(t: number, r: number, from: number): number {
    let lo = from;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.before(this.time[mid], this.rank[this.cpu[mid]], t, r)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether a step at (ta, ra) comes before one at (tb, rb) under the timed policy. */
  private before(ta: number, ra: number, tb: number, rb: number): boolean {
    return ta < tb || (ta === tb && ra < rb);
  }
}
