// @spf/labs/testing: what a lab test is written with, without the grader's transpiler, so that an
// instructor's hidden tests (`spf-grade --tests <dir>`) load in the sandboxed grading process, which may
// read only the grader's own packages.
export type { LabTest, TestCategory, TestContext } from './lab.js';
export { type FailureDetails, TestFailure } from './lab-errors.js';
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
export { type CheckOptions, checkSchedules, type SearchMode } from './lab2/explorer-check.js';
export { watchRwsem, watchSeqcount } from './lab2/debug-watch.js';
export { watchCells } from './schedule-debug.js';
