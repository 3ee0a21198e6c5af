import { InvalidArgumentError } from './errors.js';

/**
 * A set of CPU numbers, like `struct cpumask`. {@link PageTables.cpumask} plays `mm_cpumask(mm)`: the CPUs
 * that may hold TLB entries for the address space, which a TLB shootdown must reach.
 */
export class CpuMask {
  private readonly bits = new Set<number>();

  /** `cpumask_set_cpu()`. */
  set(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0)
      throw new InvalidArgumentError(`CPU must be a non-negative integer, got ${cpu}`);
    this.bits.add(cpu);
  }
  /** `cpumask_clear_cpu()`. */
  clear(cpu: number): void {
    this.bits.delete(cpu);
  }
  /** `cpumask_test_cpu()`. */
  has(cpu: number): boolean {
    return this.bits.has(cpu);
  }
  /** `cpumask_weight()`. */
  get size(): number {
    return this.bits.size;
  }
  /** The CPUs in ascending order. */
  cpus(): number[] {
    return [...this.bits].sort((a, b) => a - b);
  }
}
