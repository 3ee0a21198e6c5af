// Public API of this package.

// Replay format and real-kernel conformance harness.
export { diffReplayOutputs, splitObservations, type DiffLabels } from './replay/diff.js';
export { HarnessError, HostUnavailableError, ReplayOutputError, ReplayParseError } from './replay/errors.js';
export {
  ARENA_BASE,
  ARENA_PAGES,
  arenaAddress,
  formatOp,
  formatProt,
  formatScript,
  MAX_PAGEMAP_PAGES,
  PROT_NONE,
  REPLAY_PAGE_SIZE,
  TOUCH_STORE_VALUE,
  type Access,
  type AnonSource,
  type MapsOp,
  type MmapOp,
  type MmapSource,
  type MprotectOp,
  type MunmapOp,
  type PagemapOp,
  type ParsedOp,
  type Prot,
  type ReplayOp,
  type Share,
  type TouchOp,
} from './replay/format.js';
export { generateScript, type GenerateOptions } from './replay/generate.js';
export {
  compileHarness,
  harnessSourcePath,
  probeHost,
  runOnHost,
  type HostProbe,
  type RunOnHostOptions,
} from './replay/host.js';
export {
  formatMapsEntry,
  formatObservation,
  formatObservations,
  formatPerms,
  type ErrnoName,
  type MapsEntry,
  type MapsObservation,
  type Observation,
  type PagemapObservation,
  type PageState,
  type SegvCode,
  type SyscallObservation,
  type TouchObservation,
} from './replay/observation.js';
export { parseLine, parseScript } from './replay/parse.js';
export { parseObservations } from './replay/parse-output.js';

// The simulated system: boot, processes, user programs, `spf replay`.
export {
  designEntry,
  FAULT_HANDLERS,
  type FaultHandlerEntry,
  FaultHandlerOptionError,
  type FaultHandlerOptions,
  faultHandlerByName,
  faultHandlerNames,
  parseSpecOptions,
  UnknownFaultHandlerError,
} from './fault-handlers.js';
export { pageStateAt } from './pagemap.js';
export { type ExitStatus, Process, Thread } from './process.js';
export {
  ReplaySimulatorError,
  type ReplayRun,
  type RunReplayOptions,
  runReplay,
  streamReplay,
} from './run-replay.js';
export { ProcessExiting, type SignalCode, type SignalInfo, type SignalName, UserSignal } from './signals.js';
export {
  type BootConfig,
  BootConfigError,
  boot,
  MAX_MEMORY,
  MIN_MEMORY,
  System,
  SystemError,
  type SystemRunResult,
} from './system.js';
export { InvalidUserAccessError } from './user-access-error.js';
export { UserContext, type UserProgram } from './user-context.js';
