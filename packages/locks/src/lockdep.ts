import { type IpiHandler, type Kernel, KernelFault } from '@spf/machine';
import { type Current, describeCurrent } from './current.js';

/**
 * A lockdep splat: a locking pattern that can deadlock (order inversion, recursion, irq-safety mixing) or
 * sleeping in atomic context. Kind `lockdep`. Raised when the pattern is first seen, even if this run did
 * not deadlock.
 */
export class LockdepError extends KernelFault {
  override name = 'LockdepError';
  constructor(message: string) {
    super('lockdep', message);
  }
}

/** How a lock waits: spinning (spinlock_t, raw_spinlock_t) or sleeping (mutex, rw_semaphore). */
export type LockWaitKind = 'spin' | 'sleep';

/**
 * What lockdep knows of one lock instance (`struct lockdep_map`): its name and class. Locks with the same
 * class (by default the same name) are one node of the dependency graph, as every `mm->mmap_lock` is one
 * class in the kernel.
 */
export interface LockdepMap {
  readonly name: string;
  readonly lockClass: string;
  readonly waitKind: LockWaitKind;
}

/**
 * `SINGLE_DEPTH_NESTING` (include/linux/lockdep.h): the subclass of a second lock of one class taken while the
 * first is held (fork's second mmap_lock and PTE lock, mremap's second PTE lock).
 */
export const SINGLE_DEPTH_NESTING = 1;

/** How an acquisition happens. */
export type AcquireMode = {
  /** A shared (read) acquisition. */
  readonly read?: boolean;
  /** A trylock: it cannot deadlock, so it adds no dependency (as in `validate_chain()`). */
  readonly trylock?: boolean;
  /** Nesting subclass (`down_write_nested(sem, SINGLE_DEPTH_NESTING)`): a separate graph node. */
  readonly subclass?: number;
  /** Interrupt state at acquisition if known; `undefined` skips the irq-usage checks. */
  readonly irqsEnabled?: boolean;
};

type Held = {
  readonly map: LockdepMap;
  readonly key: string;
  readonly read: boolean;
  readonly trylock: boolean;
};
type Edge = { readonly from: string; readonly to: string; readonly where: string };
type Usage = { irqSafe?: string; irqUnsafe?: string };

/**
 * The lock validator (kernel/locking/lockdep.c), simplified: lock classes keyed by name (plus subclass),
 * a dependency graph with an edge A -> B whenever B is acquired while A is held, and reports for
 *  - circular dependencies (ABBA), found when the closing edge is added, so from a run that never deadlocked;
 *  - recursive locking of a class the task already holds;
 *  - acquiring a sleeping lock with a spinlock held, interrupts off, in atomic context, or in an interrupt;
 *  - inconsistent irq usage: a class taken in hard-irq context and elsewhere with interrupts on, or an
 *    irq-safe class that (transitively) depends on an irq-unsafe one.
 *  - releasing a lock the task does not hold ("bad unlock balance").
 *
 * Simplifications: one graph for every irq context; the graph search is a plain breadth-first search
 * without lock chains or a cache; hard-irq context is known only to handlers wrapped with
 * {@link Lockdep.hardirq} (the machine cannot tell an IPI handler from the task it interrupted).
 *
 * How locks find it: every lock takes a `lockdep` constructor option. `undefined` means the process-wide
 * {@link defaultLockdep}, `false` turns tracking off for that lock, a `Lockdep` instance uses that one.
 * Switch all tracking off for benchmarks with `defaultLockdep.enabled = false`. Held locks are tracked
 * per task, so each run of a machine starts empty; the dependency graph persists across runs (as the
 * kernel's does across a boot) until {@link Lockdep.reset}.
 */
export class Lockdep {
  /** When false, acquisitions and releases are not tracked and nothing is reported. */
  enabled = true;
  private readonly forward = new Map<string, Map<string, Edge>>();
  private readonly backward = new Map<string, Set<string>>();
  private readonly usage = new Map<string, Usage>();
  private held = new WeakMap<object, Held[]>();
  private readonly idleKeys = new Map<number, object>();
  private hardirqDepth = new Map<number, number>();

  /** Forgets the dependency graph, usage bits and held locks. */
  reset(): void {
    this.forward.clear();
    this.backward.clear();
    this.usage.clear();
    this.held = new WeakMap();
    this.hardirqDepth = new Map();
  }

  /** Number of dependency edges recorded (for tests and reports). */
  get edgeCount(): number {
    let n = 0;
    for (const m of this.forward.values()) n += m.size;
    return n;
  }

  /** Whether the graph holds the dependency `from -> to` (class names). */
  hasDependency(from: string, to: string): boolean {
    return this.forward.get(from)?.has(to) ?? false;
  }

  /** Names of the locks `c` holds, oldest first. */
  heldBy(c: Current): readonly string[] {
    return (this.held.get(this.keyOf(c)) ?? []).map((h) => h.map.name);
  }

  /** Whether CPU `cpu` is inside a handler wrapped by {@link Lockdep.hardirq}. */
  inHardirq(cpu: number): boolean {
    return (this.hardirqDepth.get(cpu) ?? 0) > 0;
  }

  /**
   * Wraps an IPI handler so that lockdep knows it runs in hard-irq context (the kernel knows from
   * `in_hardirq()`); locks taken inside are marked irq-safe.
   */
  hardirq(handler: IpiHandler): IpiHandler {
    const ld = this;
    return function* (cpu: number): Kernel<void> {
      ld.hardirqDepth.set(cpu, (ld.hardirqDepth.get(cpu) ?? 0) + 1);
      try {
        yield* handler(cpu);
      } finally {
        ld.hardirqDepth.set(cpu, (ld.hardirqDepth.get(cpu) ?? 1) - 1);
      }
    };
  }

  /**
   * Records that `c` is about to acquire `map` (`lock_acquire()`), reporting any problem as a
   * {@link LockdepError}. Called before waiting for the lock, as the kernel does, so an ABBA is reported
   * by the task that would deadlock.
   */
  acquire(map: LockdepMap, c: Current, mode: AcquireMode = {}): void {
    if (!this.enabled) return;
    const key = mode.subclass ? `${map.lockClass}/${mode.subclass}` : map.lockClass;
    const held = this.heldList(c);
    const hardirq = this.inHardirq(c.cpu);
    // The task's description goes into reports and the graph's notes only: it is built when one is written.
    if (!mode.trylock) {
      const same = held.find((h) => h.key === key);
      if (same) {
        throw new LockdepError(
          `possible recursive locking detected: ${describeCurrent(c)} is trying to acquire '${map.name}' (class ${key}) but already holds '${same.map.name}' of the same class; a second acquisition can deadlock (use a nesting subclass if the order is guaranteed)`,
        );
      }
      for (const h of held) this.addDependency(h, key, map, c);
    }
    if (map.waitKind === 'spin') {
      if (hardirq) {
        if (!this.usageMarked(key, 'irqSafe'))
          this.markUsage(key, 'irqSafe', `acquired in hard-irq context by ${describeCurrent(c)}`);
      } else if (mode.irqsEnabled === true && !this.usageMarked(key, 'irqUnsafe')) {
        this.markUsage(key, 'irqUnsafe', `acquired with interrupts enabled by ${describeCurrent(c)}`);
      }
    }
    held.push({ map, key, read: mode.read ?? false, trylock: mode.trylock ?? false });
  }

  /**
   * Checks that `c` may sleep before it takes sleeping lock `what` (`might_sleep()`): not in an interrupt,
   * not with interrupts off, not holding a spinlock, not in another atomic section.
   */
  mightSleep(what: string, c: Current, irqsOn: boolean | undefined): void {
    if (!this.enabled) return;
    if (this.inHardirq(c.cpu))
      throw new LockdepError(
        `sleeping function called from invalid context: ${describeCurrent(c)} takes '${what}' in hard-irq context`,
      );
    const spin = this.heldList(c).find((h) => h.map.waitKind === 'spin');
    if (spin) {
      throw new LockdepError(
        `sleeping function called from invalid context: ${describeCurrent(c)} takes sleeping lock '${what}' while holding spinlock '${spin.map.name}'; drop the spinlock first or use a spinning lock`,
      );
    }
    if (irqsOn === false) {
      throw new LockdepError(
        `sleeping function called from invalid context: ${describeCurrent(c)} takes sleeping lock '${what}' with interrupts disabled`,
      );
    }
    const pc = c.task?.preemptCount ?? 0;
    if (pc > 0) {
      throw new LockdepError(
        `sleeping function called from invalid context: ${describeCurrent(c)} takes sleeping lock '${what}' in atomic context (preempt count ${pc}, e.g. inside rcu_read_lock or preempt_disable)`,
      );
    }
  }

  /** Records that `c` released `map` (`lock_release()`); releasing a lock it does not hold is reported. */
  release(map: LockdepMap, c: Current): void {
    if (!this.enabled) return;
    const held = this.heldList(c);
    for (let i = held.length - 1; i >= 0; i--) {
      if (held[i].map === map) {
        held.splice(i, 1);
        return;
      }
    }
    throw new LockdepError(
      `bad unlock balance detected: ${describeCurrent(c)} releases '${map.name}' which it does not hold (held: ${held.map((h) => h.map.name).join(', ') || 'nothing'})`,
    );
  }

  /** Turns a held exclusive acquisition into a shared one (`lock_downgrade()`). */
  downgrade(map: LockdepMap, c: Current): void {
    if (!this.enabled) return;
    const held = this.heldList(c);
    const i = held.findIndex((h) => h.map === map);
    if (i < 0) {
      throw new LockdepError(
        `downgrade of '${map.name}' by ${describeCurrent(c)}, which does not hold it for writing`,
      );
    }
    held[i] = { ...held[i], read: true };
  }

  private keyOf(c: Current): object {
    if (c.task) return c.task;
    let k = this.idleKeys.get(c.cpu);
    if (!k) {
      k = { cpu: c.cpu };
      this.idleKeys.set(c.cpu, k);
    }
    return k;
  }

  private heldList(c: Current): Held[] {
    const k = this.keyOf(c);
    let l = this.held.get(k);
    if (!l) {
      l = [];
      this.held.set(k, l);
    }
    return l;
  }

  private addDependency(prev: Held, key: string, map: LockdepMap, c: Current): void {
    if (prev.key === key) return;
    let out = this.forward.get(prev.key);
    if (out?.has(key)) return;
    const who = describeCurrent(c);
    const path = this.findPath(key, prev.key);
    if (path) {
      const chain = path.map((e) => `  '${e.from}' -> '${e.to}' (${e.where})`).join('\n');
      throw new LockdepError(
        `possible circular locking dependency detected (ABBA): ${who} acquires '${map.name}' (class ${key}) while holding '${prev.map.name}' (class ${prev.key}), but the opposite order was recorded earlier:\n${chain}\nTake these locks in one global order.`,
      );
    }
    this.checkIrqEdge(prev.key, key, who);
    if (!out) {
      out = new Map();
      this.forward.set(prev.key, out);
    }
    out.set(key, {
      from: prev.key,
      to: key,
      where: `'${map.name}' taken under '${prev.map.name}' by ${who}`,
    });
    let back = this.backward.get(key);
    if (!back) {
      back = new Set();
      this.backward.set(key, back);
    }
    back.add(prev.key);
  }

  /** Breadth-first search for a path from -> ... -> to in the dependency graph; returns its edges. */
  private findPath(from: string, to: string): Edge[] | null {
    const prevEdge = new Map<string, Edge | null>([[from, null]]);
    const queue = [from];
    while (queue.length > 0) {
      const n = queue.shift()!;
      if (n === to) {
        const path: Edge[] = [];
        for (let e = prevEdge.get(n); e; e = prevEdge.get(e.from)) path.unshift(e);
        return path;
      }
      for (const e of this.forward.get(n)?.values() ?? []) {
        if (!prevEdge.has(e.to)) {
          prevEdge.set(e.to, e);
          queue.push(e.to);
        }
      }
    }
    return null;
  }

  private reach(start: string, graph: (n: string) => Iterable<string>): string[] {
    const seen = new Set([start]);
    const queue = [start];
    while (queue.length > 0) {
      const n = queue.shift()!;
      for (const m of graph(n)) {
        if (!seen.has(m)) {
          seen.add(m);
          queue.push(m);
        }
      }
    }
    return [...seen];
  }

  private succ = (n: string): Iterable<string> => this.forward.get(n)?.keys() ?? [];
  private pred = (n: string): Iterable<string> => this.backward.get(n) ?? [];

  /** A new edge prev -> next must not connect an irq-safe class to an irq-unsafe one. */
  private checkIrqEdge(prev: string, next: string, who: string): void {
    const safe = this.reach(prev, this.pred).find((k) => this.usage.get(k)?.irqSafe);
    if (!safe) return;
    const unsafe = this.reach(next, this.succ).find((k) => this.usage.get(k)?.irqUnsafe);
    if (!unsafe) return;
    throw new LockdepError(
      `irq-safe -> irq-unsafe lock order detected: ${who} takes class ${next} under ${prev}; irq-safe '${safe}' (${this.usage.get(safe)!.irqSafe}) would then wait for irq-unsafe '${unsafe}' (${this.usage.get(unsafe)!.irqUnsafe}); an interrupt on the CPU holding '${unsafe}' can deadlock. Disable interrupts around '${unsafe}'.`,
    );
  }

  /** Whether class `key` already has usage `bit` (then {@link markUsage} would change nothing). */
  private usageMarked(key: string, bit: keyof Usage): boolean {
    return this.usage.get(key)?.[bit] !== undefined;
  }

  private markUsage(key: string, bit: keyof Usage, where: string): void {
    let u = this.usage.get(key);
    if (!u) {
      u = {};
      this.usage.set(key, u);
    }
    if (u[bit]) return;
    u[bit] = where;
    if (u.irqSafe && u.irqUnsafe) {
      throw new LockdepError(
        `inconsistent lock state: class ${key} was ${u.irqSafe} and ${u.irqUnsafe}; an interrupt taking it on a CPU that already holds it deadlocks. Use spin_lock_irqsave for it outside interrupts.`,
      );
    }
    if (bit === 'irqSafe') {
      const unsafe = this.reach(key, this.succ).find((k) => k !== key && this.usage.get(k)?.irqUnsafe);
      if (unsafe) {
        throw new LockdepError(
          `irq-safe -> irq-unsafe lock order detected: class ${key} became irq-safe (${where}) but depends on irq-unsafe '${unsafe}' (${this.usage.get(unsafe)!.irqUnsafe})`,
        );
      }
    } else {
      const safe = this.reach(key, this.pred).find((k) => k !== key && this.usage.get(k)?.irqSafe);
      if (safe) {
        throw new LockdepError(
          `irq-safe -> irq-unsafe lock order detected: class ${key} became irq-unsafe (${where}) but irq-safe '${safe}' (${this.usage.get(safe)!.irqSafe}) depends on it`,
        );
      }
    }
  }
}

/** The process-wide lock validator every lock uses unless told otherwise. */
export const defaultLockdep = new Lockdep();

/** Resolves a lock's `lockdep` option: `undefined` -> {@link defaultLockdep}, `false` -> none. */
export function resolveLockdep(opt: Lockdep | false | undefined): Lockdep | null {
  if (opt === false) return null;
  return opt ?? defaultLockdep;
}

/** Lockdep's state for this call: the validator if it is on, else null (so locks skip the bookkeeping). */
export function activeLockdep(ld: Lockdep | null): Lockdep | null {
  return ld?.enabled ? ld : null;
}
