// @spf/machine: a deterministic simulated x86-64 SMP machine.
export { type CallEffect, type CallStack, call, expandCalls } from './trampoline.js';
export { AtomicCell, Cell } from './cell.js';
export { type CostModel, costModelSources, defaultCostModel, makeCostModel } from './cost-model.js';
export {
  type BlockEffect,
  block,
  type DelayEffect,
  type IrqRestoreEffect,
  type SimpleEffect,
  type SpinWaitEffect,
  spinWait,
  spinWaitEffect,
  type WakeEffect,
  type WakeTaskEffect,
  cpuRelax,
  delay,
  delayEffect,
  type Effect,
  EffectKind,
  type EffectKindValue,
  effectKindNames,
  fence,
  type IpiEffect,
  type IpiHandler,
  irqDisableEffect,
  irqRestoreEffect,
  type Kernel,
  localIrqDisable,
  localIrqEnable,
  localIrqRestore,
  localIrqSave,
  type MemoryEffect,
  now,
  preemptDisable,
  preemptEnable,
  read,
  readEffect,
  rmw,
  rmwEffect,
  type RmwLoopEffect,
  rmwLoopEffect,
  type SelfInfo,
  self,
  selfEffect,
  raiseDeviceIrq,
  sendIpi,
  wake,
  wakeTask,
  write,
  writeEffect,
  yieldCpu,
} from './effects.js';
export {
  KernelAssertionError,
  KernelFault,
  kassert,
  MachineConfigError,
  ScheduleDivergenceError,
  ScheduleFormatError,
  UseAfterFreeError,
} from './errors.js';
export {
  describeExploreFailure,
  type ExplorationRecord,
  type ExploreOptions,
  type ExploreResult,
  explore,
  observeExplorations,
  parsePolicy,
  replaySchedule,
  runScenario,
  runTimed,
  type Scenario,
} from './explore.js';
export { type CpuReport, type EventRecord, type FailureReport, formatFailure } from './failure.js';
export { describeEffect } from './failure-report.js';
export { MAX_CPUS, Machine, type MachineConfig, type RunResult } from './machine.js';
export { MemoryLine } from './memory-line.js';
export { DfsExplorer } from './policy/dfs.js';
export { type FingerprintOptions, policyFingerprints, runFingerprint } from './policy-fingerprint.js';
export { pct } from './policy/pct.js';
export type { Policy, SchedulerView } from './policy/policy.js';
export { random } from './policy/random.js';
export { replay } from './policy/replay.js';
export { timed } from './policy/timed.js';
export { mixSeed, Prng } from './prng.js';
export { runSync, WouldBlockError } from './run-sync.js';
export { decodeSchedule, encodeSchedule } from './schedule.js';
export { Task, type TaskState } from './task.js';
export { ExplorationFailure, exploreInTest, REPLAY_ENV } from './testing.js';
export {
  type ChromeTrace,
  type CompactTrace,
  type TraceEvent,
  toChromeTrace,
  toCompactTrace,
} from './trace.js';
export { WaitQueue } from './wait-queue.js';
