/**
 * The calendar of quiet spinners for the discrete-event (timed) policy: CPUs whose next steps, until another
 * CPU writes the line they spin on, are only a pure spin-wait's PAUSE and a re-read that hits in the cache
 * (see `Machine.spinsQuietly`). Such a CPU's steps follow one another at a fixed period (`pause + l1Hit`),
 * so it is kept here instead of in the {@link ReadyHeap}: two entries per CPU (its next step and the one
 * after), each in the bucket of its phase within the period (an integer number of ns), a list in order of
 * rank. Walking the buckets in order, round after round, visits the spinners' steps in order of start time
 * with ties by rank, which is the order in which the heap would have given them; the machine compares the
 * next one with the heap's top.
 *
 * An entry is due in one round; after it fires it is due one round later. A CPU can join only at a step
 * that is not earlier than the walk's position, so the walk never goes back; leaving unlinks its entries.
 */
export class SpinRing {
  /** Per entry (2 cpu + stream): the next and previous entry of its bucket, or -1. */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly phaseOf: Int32Array;
  private readonly rankOf: Int32Array;
  /** Per entry: the round it is due in. */
  private readonly due: Float64Array;
  /** Per phase: the first entry of its bucket, or -1. */
  private readonly head: Int32Array;
  /** Per CPU: whether it is a member. */
  private readonly member: Uint8Array;
  /** Members' entries. */
  private live = 0;
  /** The walk: its round, its bucket and the next entry to look at there (-1: the bucket is done). */
  private now = 0;
  private phase = 0;
  private cur = -1;
  /** Whether an entry fired in this round. */
  private firedNow = false;

  constructor(
    cpus: number,
    /** The period of a quiet spinner's iteration (`pause + l1Hit`), a positive integer. */
    readonly period: number,
  ) {
    this.next = new Int32Array(2 * cpus);
    this.prev = new Int32Array(2 * cpus);
    this.phaseOf = new Int32Array(2 * cpus);
    this.rankOf = new Int32Array(2 * cpus);
    this.due = new Float64Array(2 * cpus);
    this.head = new Int32Array(period).fill(-1);
    this.member = new Uint8Array(cpus);
  }

  /** Removes CPU `id` if it is a member. */
  leave(id: number): void {
    if (this.member[id] === 0) return;
    this.member[id] = 0;
    this.live -= 2;
    this.unlink(2 * id);
    this.unlink(2 * id + 1);
  }

  /**
   * Adds CPU `id` (tie-break rank `rank`) whose next step starts at `first` and the one after at `second`
   * (`first < second < first + period`, integers). Returns false, changing nothing, if the first step
   * would come before the walk's position.
   */
  join(id: number, rank: number, first: number, second: number): boolean {
    const p = this.period;
    const r1 = Math.floor(first / p);
    const ph1 = first - r1 * p;
    const a = 2 * id;
    if (this.live === 0) {
      this.now = r1;
      this.phase = ph1;
      this.firedNow = false;
      this.link(a, ph1, rank, r1);
      this.cur = a;
    } else {
      // Whether the entry would sit before the walk's position (then it is looked at next round).
      let before: boolean;
      if (ph1 !== this.phase) before = ph1 < this.phase;
      else {
        before = true;
        for (let n = this.head[ph1]; n !== -1 && this.rankOf[n] < rank; n = this.next[n]) {
          if (n === this.cur) before = false;
        }
      }
      if (r1 < (before ? this.now + 1 : this.now)) return false;
      this.link(a, ph1, rank, r1);
    }
    const r2 = Math.floor(second / p);
    this.link(a + 1, second - r2 * p, rank, r2);
    this.member[id] = 1;
    this.live += 2;
    return true;
  }

  /**
   * The CPU whose step is next among the members, or -1 if there is none; the step starts at
   * {@link nextTime} and the CPU's rank is {@link nextRank}. Skips entries due in a later round.
   */
  peek(): number {
    if (this.live === 0) return -1;
    for (;;) {
      const n = this.cur;
      if (n === -1) {
        if (++this.phase >= this.period) this.nextRound();
        this.cur = this.head[this.phase];
        continue;
      }
      if (this.due[n] === this.now) return n >> 1;
      this.cur = this.next[n];
    }
  }

  /** Start time of the step {@link peek} returned. */
  nextTime(): number {
    return this.now * this.period + this.phase;
  }

  /** Rank of the CPU {@link peek} returned. */
  nextRank(): number {
    return this.rankOf[this.cur];
  }

  /** The step {@link peek} returned was taken: its entry is due again one round later. */
  fired(): void {
    const n = this.cur;
    this.due[n] = this.now + 1;
    this.cur = this.next[n];
    this.firedNow = true;
  }

  /** Next round; after a round in which nothing fired, straight to the first round an entry is due in. */
  private nextRound(): void {
    this.phase = 0;
    let next = this.now + 1;
    if (!this.firedNow) {
      let min = Number.POSITIVE_INFINITY;
      for (let ph = 0; ph < this.period; ph++) {
        for (let n = this.head[ph]; n !== -1; n = this.next[n]) if (this.due[n] < min) min = this.due[n];
      }
      if (min > next) next = min;
    }
    this.now = next;
    this.firedNow = false;
  }

  /** Links entry `n` into bucket `ph` in order of rank. */
  private link(n: number, ph: number, rank: number, round: number): void {
    this.phaseOf[n] = ph;
    this.rankOf[n] = rank;
    this.due[n] = round;
    let p = -1;
    let q = this.head[ph];
    while (q !== -1 && this.rankOf[q] < rank) {
      p = q;
      q = this.next[q];
    }
    this.prev[n] = p;
    this.next[n] = q;
    if (p === -1) this.head[ph] = n;
    else this.next[p] = n;
    if (q !== -1) this.prev[q] = n;
  }

  private unlink(n: number): void {
    const p = this.prev[n];
    const q = this.next[n];
    if (this.cur === n) this.cur = q;
    if (p === -1) this.head[this.phaseOf[n]] = q;
    else this.next[p] = q;
    if (q !== -1) this.prev[q] = p;
  }
}
