// Public API of @spf/bench.
export { writeFileAtomic } from './atomic-write.js';
export {
  commandFor,
  compareResults,
  readResultsFile,
  renderReport,
  reportDir,
  type RunOptions,
  runExperiment,
  toCsv,
  writeOutputs,
} from './bench.js';
export { BENCH_HELP, type BenchIo, parseCpus, runBenchCli } from './cli-main.js';
export {
  barPlot,
  cpusOf,
  type Experiment,
  type ExperimentReport,
  fmt,
  markdownTable,
  type Profile,
  points,
  type RunConfig,
  type RunRecord,
  type SeriesPoint,
  type Spread,
  spread,
  sweep,
  sweepPlot,
  sweepTable,
  type VegaLiteSpec,
} from './experiment.js';
export {
  E2_DESIGNS,
  e1,
  e2,
  e3,
  e4,
  e5,
  e6,
  e7,
  e8,
  EXPERIMENTS,
  experimentById,
  UnknownExperimentError,
} from './experiments/index.js';
export {
  CALIBRATED_ENTRIES,
  CALIBRATION_PROGRAMS,
  type CalibrationHost,
  CalibrationError,
  calibrate,
  calibrationSourceDir,
  modelAnonFaultNs,
  parseCalibrationOutput,
  profileFromMeasurements,
} from './calibrate.js';
export {
  applyCostProfile,
  COST_PROFILE_FORMAT,
  type CostOverrides,
  type CostProfile,
  CostProfileError,
  costModelLabel,
  parseCostProfile,
  type ProfileUse,
  readCostProfile,
} from './cost-profile.js';
export { renderSvg } from './plot.js';
export { ConfigRunError, runPool } from './pool.js';
export {
  mergeResults,
  parseResultsFile,
  parseShard,
  planHash,
  RESULTS_FORMAT,
  type ResultsFile,
  ResultsFileError,
  type Shard,
  shardIndices,
} from './results-file.js';
export { runConfig } from './run-config.js';
export {
  type BaseParams,
  bootFor,
  type Metrics,
  type Workload,
  WorkloadConfigError,
  type WorkloadResult,
} from './workload.js';
export * from './workloads/index.js';
