import { formatDebugTimeline } from './format-debug.js';
import type { EarlierUse, GradeReport, TestResult } from './result.js';

const LABEL: Record<TestResult['status'], string> = {
  pass: 'OK',
  fail: 'FAIL',
  error: 'ERROR',
  skipped: 'SKIPPED',
  timeout: 'TIMEOUT',
};

/** One test as printed by the CLI grader (xv6 style), with its failure details indented below. */
export function formatResult(r: TestResult): string {
  const head = `== Test ${r.id}: ${r.title} == ${LABEL[r.status]} (${r.points}/${r.maxPoints})`;
  const lines = [head];
  if (r.status !== 'pass' && r.message) lines.push(`   ${r.message}`);
  if (r.details.expected !== undefined) lines.push(`   expected: ${r.details.expected}`);
  if (r.details.actual !== undefined) lines.push(`   actual:   ${r.details.actual}`);
  if (r.details.schedule !== undefined) lines.push(`   schedule: ${r.details.schedule}`);
  if (r.details.debug) {
    lines.push('   timeline (the last steps before the failure; cells after each step):');
    lines.push(...formatDebugTimeline(r.details.debug, 12).map((l) => `     ${l}`));
  }
  if (r.details.notes) lines.push(...r.details.notes.map((l) => `   ${l}`));
  if (r.output) lines.push(...r.output.split('\n').map((l) => `   | ${l}`));
  return lines.join('\n');
}

/** A whole report as printed by the CLI grader, ending with `Score: X/Y`. */
export function formatReport(report: GradeReport): string {
  const lines: string[] = [];
  if (report.error) {
    const where = report.error.file
      ? ` (${report.error.file}${report.error.line ? `:${report.error.line}` : ''})`
      : '';
    lines.push(`${report.status}: ${report.error.message}${where}`);
  }
  for (const r of report.results) lines.push(formatResult(r));
  for (const e of report.earlier ?? []) lines.push(formatEarlierUse(e));
  lines.push(`Score: ${report.score}/${report.maxScore}`);
  return lines.join('\n');
}

/** One line saying whether a lab ran on the student's earlier solution (`GradeReport.earlier`). */
export function formatEarlierUse(e: EarlierUse): string {
  const regression = `its tests ran as the regression tests ${e.lab}/…, worth no points here`;
  if (e.used) return `Built on your ${e.lab} solution (full marks, ${e.score}/${e.maxScore}; ${regression}).`;
  const why = e.error === undefined ? `scored ${e.score}/${e.maxScore}` : `did not load (${e.error})`;
  return `Your ${e.lab} solution ${why}: this lab ran on the package's code instead (${regression}).`;
}
