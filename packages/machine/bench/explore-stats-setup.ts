// A vitest setup file for bench/explorer.ts (not a test): records every exploration the tests run, with the
// test's name, as one JSON line in the file named by SPF_EXPLORE_STATS.
import { appendFileSync } from 'node:fs';
import { observeExplorations } from '../src/index.js';
import { expect } from 'vitest';

const out = process.env.SPF_EXPLORE_STATS;
if (out) {
  observeExplorations((r) => {
    const f = r.result.failure;
    appendFileSync(
      out,
      `${JSON.stringify({
        file: expect.getState().testPath?.split('/packages/')[1] ?? '?',
        test: expect.getState().currentTestName ?? r.scenario ?? '?',
        policy: r.result.policy,
        runs: r.result.runs,
        exhausted: r.result.exhausted,
        found: f ? f.kind : null,
        steps: r.result.maxSteps,
        hostMs: r.hostMs,
      })}\n`,
    );
  });
}
