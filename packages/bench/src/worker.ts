import { parentPort } from 'node:worker_threads';
import type { RunConfig } from './experiment.js';
import { runConfig } from './run-config.js';

/** The worker thread of the pool: runs the configurations it is sent, one at a time. */
if (parentPort === null) throw new Error('worker.ts runs only as a worker thread');
const port = parentPort;
port.on('message', (msg: { index: number; config: RunConfig }) => {
  try {
    port.postMessage({ ok: true, record: runConfig(msg.config, msg.index) });
  } catch (e) {
    port.postMessage({ ok: false, index: msg.index, error: e instanceof Error ? e.message : String(e) });
  }
});
