// @spf/labs: the course's graded labs and the machinery that grades them in Node and in browsers.
export { formatEarlierUse, formatReport, formatResult } from './format-report.js';
export {
  gradeSources,
  MAX_SOURCE_CHARS,
  transpileEarlier,
  transpileSources,
  validateLab,
} from './grade.js';
export type { EarlierSolution } from './grade-transpiled.js';
export { maxScore, stoppedReport, timeoutReport } from './timeout-report.js';
export type {
  BuggyVariant,
  InjectionPoint,
  Lab,
  LabFile,
  LabOutline,
  LabTest,
  StudentModules,
  TestCategory,
  TestContext,
  TestOutline,
} from './lab.js';
export { labOutline } from './lab.js';
export {
  type FailureDetails,
  LabDefinitionError,
  StudentLoadError,
  StudentSyntaxError,
  TestFailure,
  UnknownLabError,
} from './lab-errors.js';
export { lab1 } from './lab1/lab1.js';
export { lab2 } from './lab2/lab2.js';
export { lab3 } from './lab3/lab3.js';
export { lab4 } from './lab4/lab4.js';
export { lab5 } from './lab5/lab5.js';
export { lab6 } from './lab6/lab6.js';
export { lab7 } from './lab7/lab7.js';
export { type CheckOptions, checkSchedules, type SearchMode } from './lab2/explorer-check.js';
export { watchRwsem, watchSeqcount } from './lab2/debug-watch.js';
export {
  DEBUG_STEPS,
  type DebugLock,
  type DebugPlace,
  type DebugStep,
  type ScheduleDebug,
  type WatchedCell,
  watchCells,
} from './schedule-debug.js';
export { formatDebugStep, formatDebugTimeline, stepThrough } from './format-debug.js';
export { probedNamespace, traceStudent } from './debug-probe.js';
export {
  checkPracticeSeed,
  formatExercise,
  type PracticeExercise,
  PracticeError,
} from './practice/practice.js';
export { lab1Practice } from './practice/lab1-practice.js';
export { lab2Practice } from './practice/lab2-practice.js';
export { practiceExercise, practiceGenerators } from './practice/practice-registry.js';
export {
  type MapOptions,
  PageTableBuilder,
  PTE_A,
  PTE_D,
  PTE_P,
  PTE_PS,
  PTE_RW,
  PTE_US,
  PTE_XD,
  SIZE_1G,
  SIZE_2M,
  SIZE_4K,
  TestMemory,
  vaOf,
} from './lab1/page-table-builder.js';
export { type GradescopeResults, type GradescopeTest, gradescopeResults } from './gradescope.js';
export { getLab, labs } from './registry.js';
export { withAncestors } from './test-chain.js';
export {
  type EarlierUse,
  type GradeReport,
  type GradeStatus,
  type TestResult,
  type TestStatus,
  totalPoints,
} from './result.js';
export { type RunnerHooks, runTests } from './runner.js';
export { serveGradeRequest } from './serve-grade-request.js';
export { loadStudentModules, type ModuleMap, studentLocation } from './student-module.js';
export { transpileStudent } from './transpile.js';
export { starterSources } from './variants.js';
export {
  type GradeRequest,
  gradeWithWatchdog,
  type Sources,
  type WatchdogOptions,
  type WorkerMessage,
  type WorkerPort,
} from './worker-protocol.js';
