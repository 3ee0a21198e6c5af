import { Worker } from 'node:worker_threads';
import type { Sources } from '../grade.js';
import type { Lab } from '../lab.js';
import type { GradeReport } from '../result.js';
import { gradeWithWatchdog, type WatchdogOptions, type WorkerMessage } from '../worker-protocol.js';

/**
 * Grades in a Node worker thread under the watchdog, so an infinite loop in student code becomes a
 * `timeout` result. Needs the built package (the worker runs dist/cli/grade-worker.js).
 */
export function gradeInNodeWorker(
  lab: Lab,
  sources: Sources,
  opts: WatchdogOptions = {},
): Promise<GradeReport> {
  return gradeWithWatchdog(
    lab,
    sources,
    () => {
      const w = new Worker(new URL('./grade-worker.js', import.meta.url));
      return {
        post: (m) => w.postMessage(m),
        listen(onMessage, onError) {
          w.on('message', (m: WorkerMessage) => onMessage(m));
          w.on('error', (e) => onError(e.message));
        },
        terminate: () => void w.terminate(),
      };
    },
    opts,
  );
}
