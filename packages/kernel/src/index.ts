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
  fileByte,
  MAX_FILE_ID,
  MAX_FILE_PAGES,
  MAX_PAGEMAP_PAGES,
  WRITE_STORE_VALUE,
  type EvictOp,
  type FileOp,
  type FileReplayOp,
  type FileSource,
  type ReadOp,
  type TruncateOp,
  type WriteOp,
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
  compileC,
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
  type FileSyscallObservation,
  type ReadObservation,
  type WriteObservation,
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
export { FdTable, NR_OPEN_DEFAULT } from './fd-table.js';
export {
  mmapFileOf,
  O_ACCMODE,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_NOREUSE,
  POSIX_FADV_NORMAL,
  POSIX_FADV_RANDOM,
  POSIX_FADV_SEQUENTIAL,
  POSIX_FADV_WILLNEED,
  sysFadvise,
  sysFsync,
  sysFtruncate,
  sysOpen,
  sysPread,
  sysPwrite,
  UnsupportedAdviceError,
} from './file-syscalls.js';
export { pageStateAt } from './pagemap.js';
export { type ExitStatus, Process, Thread } from './process.js';
export {
  ReplaySimulatorError,
  type ReplayRun,
  type RunReplayOptions,
  runReplay,
  streamReplay,
} from './run-replay.js';
export {
  checkScalingOptions,
  runScaling,
  type ScalingOptions,
  type ScalingResult,
} from './scenarios/scaling.js';
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
export {
  measureVmFileWindow,
  VM_FILE_WINDOW_LOADS,
  type VmFileWindow,
  type VmFileWindowLoad,
} from './scenarios/vm-file-window.js';
