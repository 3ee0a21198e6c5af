import { formatOp } from './format.js';
import { parseScript } from './parse.js';

/**
 * Splits replay output into one chunk per op: a single line for most ops, and `maps` through its `end`
 * line for `maps`. Chunks carry no trailing newline.
 */
export function splitObservations(output: string): string[] {
  const lines = output.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const chunks: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== 'maps') {
      chunks.push(lines[i]);
      continue;
    }
    const start = i;
    while (i < lines.length && lines[i] !== 'end') i++;
    chunks.push(lines.slice(start, i + 1).join('\n'));
  }
  return chunks;
}

/** Labels for the two outputs in a difference report. */
export interface DiffLabels {
  readonly expected: string;
  readonly actual: string;
}

function indent(chunk: string | undefined): string {
  return chunk === undefined ? '    (nothing: output ended)' : chunk.replace(/^/gm, '    ');
}

/**
 * Compares two outputs of the same script op by op, e.g. the host harness's against the simulator's.
 * Returns null when they are identical, or a report naming the first op whose observations differ, with its
 * script line, both outputs for that op, and the ops before it so the difference can be reproduced.
 */
export function diffReplayOutputs(
  script: string,
  expected: string,
  actual: string,
  labels: DiffLabels = { expected: 'host', actual: 'simulator' },
): string | null {
  if (expected === actual) return null;
  const ops = parseScript(script);
  const want = splitObservations(expected);
  const got = splitObservations(actual);
  const n = Math.max(want.length, got.length, ops.length);
  for (let i = 0; i < n; i++) {
    if (want[i] === got[i]) continue;
    const op = ops[i];
    const where =
      op === undefined ? `output chunk ${i + 1} (past the last op)` : `op ${i + 1} (line ${op.line})`;
    const prefix = ops
      .slice(0, i + 1)
      .map((o) => formatOp(o))
      .join('\n');
    return [
      `${where}: ${op === undefined ? '' : `\`${formatOp(op)}\``}`,
      `  ${labels.expected} printed:`,
      indent(want[i]),
      `  ${labels.actual} printed:`,
      indent(got[i]),
      '  script up to that op:',
      indent(prefix),
    ].join('\n');
  }
  return 'the outputs differ only in trailing whitespace or newlines';
}
