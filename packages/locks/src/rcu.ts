function stryNS_9fa48() {
  var g = typeof globalThis === 'object' && globalThis && globalThis.Math === Math && globalThis || new Function("return this")();
  var ns = g.__stryker__ || (g.__stryker__ = {});
  if (ns.activeMutant === undefined && g.process && g.process.env && g.process.env.__STRYKER_ACTIVE_MUTANT__) {
    ns.activeMutant = g.process.env.__STRYKER_ACTIVE_MUTANT__;
  }
  function retrieveNS() {
    return ns;
  }
  stryNS_9fa48 = retrieveNS;
  return retrieveNS();
}
stryNS_9fa48();
function stryCov_9fa48() {
  var ns = stryNS_9fa48();
  var cov = ns.mutantCoverage || (ns.mutantCoverage = {
    static: {},
    perTest: {}
  });
  function cover() {
    var c = cov.static;
    if (ns.currentTestId) {
      c = cov.perTest[ns.currentTestId] = cov.perTest[ns.currentTestId] || {};
    }
    var a = arguments;
    for (var i = 0; i < a.length; i++) {
      c[a[i]] = (c[a[i]] || 0) + 1;
    }
  }
  stryCov_9fa48 = cover;
  cover.apply(null, arguments);
}
function stryMutAct_9fa48(id) {
  var ns = stryNS_9fa48();
  function isActive(id) {
    if (ns.activeMutant === id) {
      if (ns.hitCount !== void 0 && ++ns.hitCount > ns.hitLimit) {
        throw new Error('Stryker: Hit count limit reached (' + ns.hitCount + ')');
      }
      return true;
    }
    return false;
  }
  stryMutAct_9fa48 = isActive;
  return isActive(id);
}
import { Cell, cpuRelax, type Kernel, KernelFault, type Machine, MemoryLine, yieldCpu, readEffect, writeEffect, rmwEffect } from '@spf/machine';
import { current, describeCurrent } from './current.js';
import type { Poisonable } from './rcu-object.js';

/** Misuse of RCU: unbalanced rcu_read_unlock, synchronize_rcu inside a read-side section. Kind `rcu`. */
export class RcuError extends KernelFault {
  override name = stryMutAct_9fa48("0") ? "" : (stryCov_9fa48("0"), 'RcuError');
  constructor(message: string) {
    super(stryMutAct_9fa48("1") ? "" : (stryCov_9fa48("1"), 'rcu'), message);
  }
}

/** A callback queued with {@link Rcu.callRcu}: plain code, or kernel code to run with `yield*`. */
export type RcuCallback = () => void | Kernel<void>;
type PerCpu = {
  readonly nesting: Cell<number>;
  ctr: number;
};
type Pending = {
  readonly cb: RcuCallback;
  readonly after: number;
};

/**
 * Read-copy update, modelled on Tree RCU (kernel/rcu/tree.c) for a non-preemptible kernel: a read-side
 * section disables preemption and costs only a store to this CPU's own line, so readers never share a
 * line and scale linearly; a grace period ends only after every CPU that was inside a read-side section
 * when it started has left it (a quiescent state).
 *
 * Simplification: instead of the rcu_node tree and quiescent states reported from the scheduler tick and
 * context switches, `synchronize()` samples each CPU's nesting count and, for CPUs inside a section, waits
 * until that CPU's exit counter moves (the scheme of userspace RCU, liburcu). Grace periods are not
 * batched: each `synchronize()` runs its own.
 *
 * Callbacks (`callRcu`, `kfreeRcu`) run after a later grace period, in the task that completed it. Built
 * with a {@link Machine}, the first `callRcu` spawns an `rcu_gp` kthread on the calling CPU that runs
 * grace periods until no callback is left (like the kernel's rcu_gp kthread); built with a CPU count
 * (for `runSync`), callbacks run at the next `synchronize()` or `barrier()`.
 *
 * Misuse stops the run with an {@link RcuError} naming the CPU: rcu_read_unlock without rcu_read_lock,
 * synchronize_rcu inside a read-side section, and (on a machine) a CPU that ends the run inside one.
 */
export class Rcu {
  readonly cpuCount: number;
  private readonly percpu: PerCpu[];
  private readonly machine: Machine | null;
  /** `rcu_state.gp_seq`: the line grace periods start and end on. */
  private readonly gpLine = new MemoryLine(stryMutAct_9fa48("2") ? "" : (stryCov_9fa48("2"), 'rcu_state'));
  private gpStarted = 0;
  private gpCompleted = 0;
  private pending: Pending[] = stryMutAct_9fa48("3") ? ["Stryker was here"] : (stryCov_9fa48("3"), []);
  private kthreadAlive = stryMutAct_9fa48("4") ? true : (stryCov_9fa48("4"), false);
  constructor(machineOrCpus: Machine | number) {
    if (stryMutAct_9fa48("5")) {
      {}
    } else {
      stryCov_9fa48("5");
      if (stryMutAct_9fa48("8") ? typeof machineOrCpus !== 'number' : stryMutAct_9fa48("7") ? false : stryMutAct_9fa48("6") ? true : (stryCov_9fa48("6", "7", "8"), typeof machineOrCpus === (stryMutAct_9fa48("9") ? "" : (stryCov_9fa48("9"), 'number')))) {
        if (stryMutAct_9fa48("10")) {
          {}
        } else {
          stryCov_9fa48("10");
          this.machine = null;
          this.cpuCount = machineOrCpus;
        }
      } else {
        if (stryMutAct_9fa48("11")) {
          {}
        } else {
          stryCov_9fa48("11");
          this.machine = machineOrCpus;
          this.cpuCount = machineOrCpus.cpuCount;
        }
      }
      this.percpu = Array.from(stryMutAct_9fa48("12") ? {} : (stryCov_9fa48("12"), {
        length: this.cpuCount
      }), stryMutAct_9fa48("13") ? () => undefined : (stryCov_9fa48("13"), (_, i) => stryMutAct_9fa48("14") ? {} : (stryCov_9fa48("14"), {
        nesting: new Cell(0, new MemoryLine(stryMutAct_9fa48("15") ? `` : (stryCov_9fa48("15"), `rcu_data[${i}]`))),
        ctr: 0
      })));
      stryMutAct_9fa48("16") ? this.machine.atEnd(() => {
        for (let i = 0; i < this.cpuCount; i++) {
          const n = this.percpu[i].nesting.value;
          if (n !== 0) {
            throw new RcuError(`CPU ${i} ended inside an RCU read-side critical section (nesting ${n}): an rcu_read_lock without rcu_read_unlock`);
          }
        }
      }) : (stryCov_9fa48("16"), this.machine?.atEnd(() => {
        if (stryMutAct_9fa48("17")) {
          {}
        } else {
          stryCov_9fa48("17");
          for (let i = 0; stryMutAct_9fa48("20") ? i >= this.cpuCount : stryMutAct_9fa48("19") ? i <= this.cpuCount : stryMutAct_9fa48("18") ? false : (stryCov_9fa48("18", "19", "20"), i < this.cpuCount); stryMutAct_9fa48("21") ? i-- : (stryCov_9fa48("21"), i++)) {
            if (stryMutAct_9fa48("22")) {
              {}
            } else {
              stryCov_9fa48("22");
              const n = this.percpu[i].nesting.value;
              if (stryMutAct_9fa48("25") ? n === 0 : stryMutAct_9fa48("24") ? false : stryMutAct_9fa48("23") ? true : (stryCov_9fa48("23", "24", "25"), n !== 0)) {
                if (stryMutAct_9fa48("26")) {
                  {}
                } else {
                  stryCov_9fa48("26");
                  throw new RcuError(stryMutAct_9fa48("27") ? `` : (stryCov_9fa48("27"), `CPU ${i} ended inside an RCU read-side critical section (nesting ${n}): an rcu_read_lock without rcu_read_unlock`));
                }
              }
            }
          }
        }
      }));
    }
  }

  /** Grace periods completed so far. */
  get completed(): number {
    if (stryMutAct_9fa48("28")) {
      {}
    } else {
      stryCov_9fa48("28");
      return this.gpCompleted;
    }
  }

  /** Callbacks waiting for a grace period. */
  get pendingCallbacks(): number {
    if (stryMutAct_9fa48("29")) {
      {}
    } else {
      stryCov_9fa48("29");
      return this.pending.length;
    }
  }

  /** Whether CPU `cpu` is inside a read-side section (plain read for assertions). */
  isReading(cpu: number): boolean {
    if (stryMutAct_9fa48("30")) {
      {}
    } else {
      stryCov_9fa48("30");
      return stryMutAct_9fa48("34") ? this.percpu[cpu].nesting.value <= 0 : stryMutAct_9fa48("33") ? this.percpu[cpu].nesting.value >= 0 : stryMutAct_9fa48("32") ? false : stryMutAct_9fa48("31") ? true : (stryCov_9fa48("31", "32", "33", "34"), this.percpu[cpu].nesting.value > 0);
    }
  }

  /** `rcu_read_lock()`: disables preemption and bumps this CPU's nesting count (a CPU-local store). */
  *readLock(): Kernel<void> {
    if (stryMutAct_9fa48("35")) {
      {}
    } else {
      stryCov_9fa48("35");
      const c = yield* current();
      if (stryMutAct_9fa48("37") ? false : stryMutAct_9fa48("36") ? true : (stryCov_9fa48("36", "37"), c.task)) stryMutAct_9fa48("38") ? c.task.preemptCount-- : (stryCov_9fa48("38"), c.task.preemptCount++);
      const p = this.percpu[c.cpu];
      yield writeEffect(p.nesting.line);
      stryMutAct_9fa48("39") ? p.nesting.value-- : (stryCov_9fa48("39"), p.nesting.value++);
    }
  }

  /** `rcu_read_unlock()`: leaves the section; the outermost unlock is a quiescent point for this CPU. */
  *readUnlock(): Kernel<void> {
    if (stryMutAct_9fa48("40")) {
      {}
    } else {
      stryCov_9fa48("40");
      const c = yield* current();
      const p = this.percpu[c.cpu];
      if (stryMutAct_9fa48("44") ? p.nesting.value > 0 : stryMutAct_9fa48("43") ? p.nesting.value < 0 : stryMutAct_9fa48("42") ? false : stryMutAct_9fa48("41") ? true : (stryCov_9fa48("41", "42", "43", "44"), p.nesting.value <= 0)) {
        if (stryMutAct_9fa48("45")) {
          {}
        } else {
          stryCov_9fa48("45");
          throw new RcuError(stryMutAct_9fa48("46") ? `` : (stryCov_9fa48("46"), `rcu_read_unlock by ${describeCurrent(c)} without a matching rcu_read_lock on CPU ${c.cpu}`));
        }
      }
      yield writeEffect(p.nesting.line);
      stryMutAct_9fa48("47") ? p.nesting.value++ : (stryCov_9fa48("47"), p.nesting.value--);
      if (stryMutAct_9fa48("50") ? p.nesting.value !== 0 : stryMutAct_9fa48("49") ? false : stryMutAct_9fa48("48") ? true : (stryCov_9fa48("48", "49", "50"), p.nesting.value === 0)) stryMutAct_9fa48("51") ? p.ctr-- : (stryCov_9fa48("51"), p.ctr++);
      if (stryMutAct_9fa48("53") ? false : stryMutAct_9fa48("52") ? true : (stryCov_9fa48("52", "53"), c.task)) stryMutAct_9fa48("54") ? c.task.preemptCount++ : (stryCov_9fa48("54"), c.task.preemptCount--);
    }
  }

  /**
   * `synchronize_rcu()`: waits until every read-side section that was running when it was called has
   * ended, then runs the callbacks whose grace period is over.
   */
  *synchronize(): Kernel<void> {
    if (stryMutAct_9fa48("55")) {
      {}
    } else {
      stryCov_9fa48("55");
      const c = yield* current();
      if (stryMutAct_9fa48("59") ? this.percpu[c.cpu].nesting.value <= 0 : stryMutAct_9fa48("58") ? this.percpu[c.cpu].nesting.value >= 0 : stryMutAct_9fa48("57") ? false : stryMutAct_9fa48("56") ? true : (stryCov_9fa48("56", "57", "58", "59"), this.percpu[c.cpu].nesting.value > 0)) {
        if (stryMutAct_9fa48("60")) {
          {}
        } else {
          stryCov_9fa48("60");
          throw new RcuError(stryMutAct_9fa48("61") ? `` : (stryCov_9fa48("61"), `synchronize_rcu by ${describeCurrent(c)} inside an RCU read-side critical section on CPU ${c.cpu}: it would wait for itself`));
        }
      }
      yield rmwEffect(this.gpLine);
      const gp = stryMutAct_9fa48("62") ? --this.gpStarted : (stryCov_9fa48("62"), ++this.gpStarted);
      const waitFor: Array<{
        cpu: number;
        ctr: number;
      }> = stryMutAct_9fa48("63") ? ["Stryker was here"] : (stryCov_9fa48("63"), []);
      for (let i = 0; stryMutAct_9fa48("66") ? i >= this.cpuCount : stryMutAct_9fa48("65") ? i <= this.cpuCount : stryMutAct_9fa48("64") ? false : (stryCov_9fa48("64", "65", "66"), i < this.cpuCount); stryMutAct_9fa48("67") ? i-- : (stryCov_9fa48("67"), i++)) {
        if (stryMutAct_9fa48("68")) {
          {}
        } else {
          stryCov_9fa48("68");
          if (stryMutAct_9fa48("71") ? i !== c.cpu : stryMutAct_9fa48("70") ? false : stryMutAct_9fa48("69") ? true : (stryCov_9fa48("69", "70", "71"), i === c.cpu)) continue;
          const p = this.percpu[i];
          yield readEffect(p.nesting.line);
          if (stryMutAct_9fa48("75") ? p.nesting.value <= 0 : stryMutAct_9fa48("74") ? p.nesting.value >= 0 : stryMutAct_9fa48("73") ? false : stryMutAct_9fa48("72") ? true : (stryCov_9fa48("72", "73", "74", "75"), p.nesting.value > 0)) waitFor.push(stryMutAct_9fa48("76") ? {} : (stryCov_9fa48("76"), {
            cpu: i,
            ctr: p.ctr
          }));
        }
      }
      while (stryMutAct_9fa48("79") ? waitFor.length <= 0 : stryMutAct_9fa48("78") ? waitFor.length >= 0 : stryMutAct_9fa48("77") ? false : (stryCov_9fa48("77", "78", "79"), waitFor.length > 0)) {
        if (stryMutAct_9fa48("80")) {
          {}
        } else {
          stryCov_9fa48("80");
          for (let j = stryMutAct_9fa48("81") ? waitFor.length + 1 : (stryCov_9fa48("81"), waitFor.length - 1); stryMutAct_9fa48("84") ? j < 0 : stryMutAct_9fa48("83") ? j > 0 : stryMutAct_9fa48("82") ? false : (stryCov_9fa48("82", "83", "84"), j >= 0); stryMutAct_9fa48("85") ? j++ : (stryCov_9fa48("85"), j--)) {
            if (stryMutAct_9fa48("86")) {
              {}
            } else {
              stryCov_9fa48("86");
              const p = this.percpu[waitFor[j].cpu];
              yield readEffect(p.nesting.line);
              if (stryMutAct_9fa48("89") ? p.nesting.value === 0 && p.ctr !== waitFor[j].ctr : stryMutAct_9fa48("88") ? false : stryMutAct_9fa48("87") ? true : (stryCov_9fa48("87", "88", "89"), (stryMutAct_9fa48("91") ? p.nesting.value !== 0 : stryMutAct_9fa48("90") ? false : (stryCov_9fa48("90", "91"), p.nesting.value === 0)) || (stryMutAct_9fa48("93") ? p.ctr === waitFor[j].ctr : stryMutAct_9fa48("92") ? false : (stryCov_9fa48("92", "93"), p.ctr !== waitFor[j].ctr)))) waitFor.splice(j, 1);
            }
          }
          if (stryMutAct_9fa48("96") ? waitFor.length !== 0 : stryMutAct_9fa48("95") ? false : stryMutAct_9fa48("94") ? true : (stryCov_9fa48("94", "95", "96"), waitFor.length === 0)) break;
          yield* yieldCpu();
          yield* cpuRelax(stryMutAct_9fa48("97") ? "" : (stryCov_9fa48("97"), 'synchronize_rcu'));
        }
      }
      yield rmwEffect(this.gpLine);
      if (stryMutAct_9fa48("101") ? gp <= this.gpCompleted : stryMutAct_9fa48("100") ? gp >= this.gpCompleted : stryMutAct_9fa48("99") ? false : stryMutAct_9fa48("98") ? true : (stryCov_9fa48("98", "99", "100", "101"), gp > this.gpCompleted)) this.gpCompleted = gp;
      yield* this.invokeCallbacks(gp);
    }
  }

  /** `call_rcu()`: runs `cb` after a grace period that starts after this call. */
  *callRcu(cb: RcuCallback): Kernel<void> {
    if (stryMutAct_9fa48("102")) {
      {}
    } else {
      stryCov_9fa48("102");
      yield rmwEffect(this.gpLine);
      this.pending.push(stryMutAct_9fa48("103") ? {} : (stryCov_9fa48("103"), {
        cb,
        after: this.gpStarted
      }));
      if (stryMutAct_9fa48("106") ? this.machine || !this.kthreadAlive : stryMutAct_9fa48("105") ? false : stryMutAct_9fa48("104") ? true : (stryCov_9fa48("104", "105", "106"), this.machine && (stryMutAct_9fa48("107") ? this.kthreadAlive : (stryCov_9fa48("107"), !this.kthreadAlive)))) {
        if (stryMutAct_9fa48("108")) {
          {}
        } else {
          stryCov_9fa48("108");
          const c = yield* current();
          this.kthreadAlive = stryMutAct_9fa48("109") ? false : (stryCov_9fa48("109"), true);
          const rcu = this;
          this.machine.spawn(c.cpu, stryMutAct_9fa48("110") ? "" : (stryCov_9fa48("110"), 'rcu_gp'), function* () {
            if (stryMutAct_9fa48("111")) {
              {}
            } else {
              stryCov_9fa48("111");
              while (stryMutAct_9fa48("114") ? rcu.pending.length <= 0 : stryMutAct_9fa48("113") ? rcu.pending.length >= 0 : stryMutAct_9fa48("112") ? false : (stryCov_9fa48("112", "113", "114"), rcu.pending.length > 0)) yield* rcu.synchronize();
              rcu.kthreadAlive = stryMutAct_9fa48("115") ? true : (stryCov_9fa48("115"), false);
            }
          });
        }
      }
    }
  }

  /** `kfree_rcu()`: poisons `obj` once a grace period has passed. */
  *kfreeRcu(obj: Poisonable, label = stryMutAct_9fa48("116") ? "" : (stryCov_9fa48("116"), 'object')): Kernel<void> {
    if (stryMutAct_9fa48("117")) {
      {}
    } else {
      stryCov_9fa48("117");
      const c = yield* current();
      const who = describeCurrent(c);
      yield* this.callRcu(() => {
        if (stryMutAct_9fa48("118")) {
          {}
        } else {
          stryCov_9fa48("118");
          obj.poison(stryMutAct_9fa48("119") ? `` : (stryCov_9fa48("119"), `kfree_rcu of ${label} by ${who}, after grace period ${this.gpCompleted}`));
        }
      });
    }
  }

  /** `rcu_barrier()`: waits until every callback queued so far has run. */
  *barrier(): Kernel<void> {
    if (stryMutAct_9fa48("120")) {
      {}
    } else {
      stryCov_9fa48("120");
      while (stryMutAct_9fa48("123") ? this.pending.length <= 0 : stryMutAct_9fa48("122") ? this.pending.length >= 0 : stryMutAct_9fa48("121") ? false : (stryCov_9fa48("121", "122", "123"), this.pending.length > 0)) yield* this.synchronize();
    }
  }
  private *invokeCallbacks(gp: number): Kernel<void> {
    if (stryMutAct_9fa48("124")) {
      {}
    } else {
      stryCov_9fa48("124");
      const ready = stryMutAct_9fa48("125") ? this.pending : (stryCov_9fa48("125"), this.pending.filter(stryMutAct_9fa48("126") ? () => undefined : (stryCov_9fa48("126"), p => stryMutAct_9fa48("130") ? p.after >= gp : stryMutAct_9fa48("129") ? p.after <= gp : stryMutAct_9fa48("128") ? false : stryMutAct_9fa48("127") ? true : (stryCov_9fa48("127", "128", "129", "130"), p.after < gp))));
      if (stryMutAct_9fa48("133") ? ready.length !== 0 : stryMutAct_9fa48("132") ? false : stryMutAct_9fa48("131") ? true : (stryCov_9fa48("131", "132", "133"), ready.length === 0)) return;
      this.pending = stryMutAct_9fa48("134") ? this.pending : (stryCov_9fa48("134"), this.pending.filter(stryMutAct_9fa48("135") ? () => undefined : (stryCov_9fa48("135"), p => stryMutAct_9fa48("139") ? p.after < gp : stryMutAct_9fa48("138") ? p.after > gp : stryMutAct_9fa48("137") ? false : stryMutAct_9fa48("136") ? true : (stryCov_9fa48("136", "137", "138", "139"), p.after >= gp))));
      for (const p of ready) {
        if (stryMutAct_9fa48("140")) {
          {}
        } else {
          stryCov_9fa48("140");
          const r = p.cb();
          if (stryMutAct_9fa48("143") ? r || typeof (r as Kernel<void>).next === 'function' : stryMutAct_9fa48("142") ? false : stryMutAct_9fa48("141") ? true : (stryCov_9fa48("141", "142", "143"), r && (stryMutAct_9fa48("145") ? typeof (r as Kernel<void>).next !== 'function' : stryMutAct_9fa48("144") ? true : (stryCov_9fa48("144", "145"), typeof (r as Kernel<void>).next === (stryMutAct_9fa48("146") ? "" : (stryCov_9fa48("146"), 'function')))))) yield* r as Kernel<void>;
        }
      }
    }
  }
}