/** Bits of an entry's key below its phase: rank (10 bits) and stream (1 bit); see {@link SpinRing}. */
const PHASE_SHIFT = 11;

/**
 * The calendar of quiet spinners for the discrete-event (timed) policy: CPUs whose next steps, until another
 * CPU writes the line they spin on, are only a pure spin-wait's PAUSE and a re-read that hits in the cache
 * (see `Machine.spinsQuietly`). Such a CPU's steps follow one another at a fixed period (`pause + l1Hit`),
 * so it is kept here instead of in the {@link ReadyHeap}: two entries per CPU (the PAUSE and the re-read),
 * each at its phase within the period (an integer number of ns), sorted by phase and then rank. Walking
 * the entries in that order, round after round, visits the spinners' steps in order of start time with ties
 * by rank, which is the order in which the heap would have given them; the machine compares the next one
 * with the heap's top.
 *
 * An entry's key is `phase << 11 | rank << 1 | stream`, so that the order is numeric, with the CPU's
 * generation beside it. An entry fires in one round only (kept per CPU and stream); after it fires it is
 * due one round later. A CPU leaves by a new generation (its entries are dropped when the walk wraps); it
 * can join only at a step that is not earlier than the walk's position, so the walk never goes back.
 */
export class SpinRing {
  private keys: Int32Array;
  private gens: Int32Array;
  private len = 0;
  /** Next entry the walk looks at, in round {@link now}. */
  private pos = 0;
  /** The round being walked. */
  private now = 0;
  /** Whether an entry fired in this round. */
  private firedNow = false;
  /** Live entries (two per member). */
  private live = 0;
  /** Per CPU: its generation while a member, or -1. */
  private readonly memberGen: Int32Array;
  /** Per CPU and stream (2 id + stream): the round its entry is due in. */
  private readonly due: Float64Array;
  private nextGen = 0;
  /** The entry {@link peek} returned: its CPU and stream. */
  private cpu = 0;
  private stream = 0;

  constructor(
    cpus: number,
    /** The period of a quiet spinner's iteration (`pause + l1Hit`), a positive integer below 2^20. */
    readonly period: number,
    /** The CPU of each tie-break rank (ranks below 1,024). */
    private readonly cpuOfRank: Int32Array,
  ) {
    this.keys = new Int32Array(4 * cpus + 8);
    this.gens = new Int32Array(4 * cpus + 8);
    this.memberGen = new Int32Array(cpus).fill(-1);
    this.due = new Float64Array(2 * cpus);
  }

  /** Removes CPU `id` if it is a member. */
  leave(id: number): void {
    if (this.memberGen[id] >= 0) {
      this.memberGen[id] = -1;
      this.live -= 2;
    }
  }

  /**
   * Adds CPU `id` (tie-break rank `rank`) whose next step starts at `first` and the one after at `second`
   * (`first < second < first + period`, integers). Returns false, changing nothing, if the first step
   * would come before the walk's position.
   */
  join(id: number, rank: number, first: number, second: number): boolean {
    const p = this.period;
    const r1 = Math.floor(first / p);
    if (this.live === 0) {
      this.len = 0;
      this.pos = 0;
      this.now = r1;
      this.firedNow = false;
    }
    const k1 = ((first - r1 * p) << PHASE_SHIFT) | (rank << 1);
    const at = this.slot(k1);
    // Entries before the walk's position are looked at next in the following round.
    if (r1 < (at < this.pos ? this.now + 1 : this.now)) return false;
    const gen = this.nextGen;
    this.nextGen = (gen + 1) & 0x3fffffff;
    if (this.len + 2 > this.keys.length) this.compact();
    if (this.len + 2 > this.keys.length) {
      const k = new Int32Array(this.keys.length * 2);
      k.set(this.keys);
      this.keys = k;
      const g = new Int32Array(this.gens.length * 2);
      g.set(this.gens);
      this.gens = g;
    }
    this.memberGen[id] = gen;
    this.live += 2;
    this.due[2 * id] = r1;
    this.insertAt(at, k1, gen);
    const r2 = Math.floor(second / p);
    this.due[2 * id + 1] = r2;
    this.insert(((second - r2 * p) << PHASE_SHIFT) | (rank << 1) | 1, gen);
    return true;
  }

  /**
   * The CPU whose step is next among the members, or -1 if there is none; the step starts at
   * {@link nextTime} and the CPU's rank is {@link nextRank}. Skips dead entries and entries due in a later
   * round, wrapping into the next round.
   */
  peek(): number {
    for (;;) {
      if (this.live === 0) return -1;
      if (this.pos >= this.len) this.wrap();
      const i = this.pos;
      const key = this.keys[i];
      const stream = key & 1;
      const id = this.cpuOfRank[(key >> 1) & 1023];
      if (this.memberGen[id] === this.gens[i] && this.due[2 * id + stream] === this.now) {
        this.cpu = id;
        this.stream = stream;
        return id;
      }
      this.pos = i + 1;
    }
  }

  /** Start time of the step {@link peek} returned. */
  nextTime(): number {
    return this.now * this.period + (this.keys[this.pos] >> PHASE_SHIFT);
  }

  /** Rank of the CPU {@link peek} returned. */
  nextRank(): number {
    return (this.keys[this.pos] >> 1) & 1023;
  }

  /** The step {@link peek} returned was taken: its entry is due again one round later. */
  fired(): void {
    this.due[2 * this.cpu + this.stream] = this.now + 1;
    this.pos++;
    this.firedNow = true;
  }

  /** Next round: drops dead entries; after a round in which nothing fired, skips to the next entry due. */
  private wrap(): void {
    this.compact();
    let next = this.now + 1;
    if (!this.firedNow) {
      let min = Number.POSITIVE_INFINITY;
      for (let i = 0; i < this.len; i++) {
        const key = this.keys[i];
        const d = this.due[2 * this.cpuOfRank[(key >> 1) & 1023] + (key & 1)];
        if (d < min) min = d;
      }
      if (min > next) next = min;
    }
    this.now = next;
    this.pos = 0;
    this.firedNow = false;
  }

  /** Index at which key `k` goes (after equal keys; entries sorted ascending). */
  private slot(k: number): number {
    const keys = this.keys;
    let lo = 0;
    let hi = this.len;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid] <= k) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(k: number, gen: number): void {
    this.insertAt(this.slot(k), k, gen);
  }

  private insertAt(at: number, k: number, gen: number): void {
    const keys = this.keys;
    const gens = this.gens;
    for (let i = this.len; i > at; i--) {
      keys[i] = keys[i - 1];
      gens[i] = gens[i - 1];
    }
    keys[at] = k;
    gens[at] = gen;
    this.len++;
    if (at < this.pos) this.pos++;
  }

  /** Drops dead entries, keeping the order (and the walk's position on the same live entry). */
  private compact(): void {
    const keys = this.keys;
    const gens = this.gens;
    let w = 0;
    let pos = this.pos;
    for (let i = 0; i < this.len; i++) {
      const key = keys[i];
      const gen = gens[i];
      if (this.memberGen[this.cpuOfRank[(key >> 1) & 1023]] === gen) {
        keys[w] = key;
        gens[w] = gen;
        w++;
      } else if (i < this.pos) pos--;
    }
    this.len = w;
    this.pos = pos;
  }
}
