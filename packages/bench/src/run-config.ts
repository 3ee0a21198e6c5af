import type { RunConfig, RunRecord } from './experiment.js';
import { workloadByName } from './workloads/index.js';

/** Runs one configuration in this thread (the worker threads call exactly this). */
export function runConfig(config: RunConfig, index: number): RunRecord {
  const t0 = performance.now();
  const result = workloadByName(config.workload).run(config.params);
  return { index, config, result, hostMs: performance.now() - t0 };
}
