/**
 * What a scheduling policy can see of the machine when it picks the next CPU.
 */
export interface SchedulerView {
  readonly cpuCount: number;
  /** Steps taken so far in this run. */
  readonly step: number;
  /** The CPU chosen at the previous step, or -1 before the first. */
  readonly lastCpu: number;
  /** Simulated clock of a CPU in nanoseconds. */
  clock(cpu: number): number;
  /** Simulated time at which the CPU's next step can begin (its clock, or later if it waits for a wake-up or an ack). */
  readyAt(cpu: number): number;
  /** Whether the CPU's next step is a spin-wait iteration (it cannot progress on its own). */
  isSpinning(cpu: number): boolean;
}

/**
 * Decides which CPU takes the next step. Policies are interchangeable: kernel code never knows which one
 * runs it. `choose` receives the enabled CPUs in increasing order (at least one) and returns one of them.
 */
export interface Policy {
  /** Short description, e.g. `pct(seed=7,depth=3)`; shown in failure reports. */
  readonly name: string;
  /**
   * Set by discrete-event policies that always pick the enabled CPU with the earliest ready time (ties by
   * lowest id); the machine then keeps a heap instead of calling `choose` with the enabled set.
   */
  readonly discreteEvent?: boolean;
  /** Called once before the first step of a run. */
  start(view: SchedulerView): void;
  choose(enabled: Int32Array, count: number, view: SchedulerView): number;
  /** Called after a run ends, with the number of steps it took. */
  finish?(steps: number): void;
}
