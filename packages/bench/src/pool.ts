import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RunConfig, RunRecord } from './experiment.js';
import { runConfig } from './run-config.js';

/** A configuration whose simulation failed; names it. */
export class ConfigRunError extends Error {
  override readonly name = 'ConfigRunError';
}

/**
 * Starts one worker thread: `worker.js` next to this module in the build. From the sources (tests, tsx),
 * `worker.ts` is loaded through tsx's loader, registered inside the worker (Node 20 does not pass the
 * parent's loader hooks on), with the `@spf/source` condition so it runs the same sources as its parent.
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here));
  let api: string;
  try {
    api = import.meta.resolve('tsx/esm/api');
  } catch {
    // vitest's module runner has no import.meta.resolve.
    api = pathToFileURL(createRequire(here).resolve('tsx/esm/api')).href;
  }
  const entry = new URL('./worker.ts', here).href;
  const code = `(async () => { const { register } = await import(${JSON.stringify(api)}); register(); await import(${JSON.stringify(entry)}); })().catch((e) => { throw e; });`;
  return new Worker(code, { eval: true, execArgv: ['--conditions=@spf/source'] });
}

/**
 * Runs `items` (configuration and its index in the whole list) on `jobs` worker threads (1: in this
 * thread) and returns the records in the order of `items`. Each configuration is a deterministic function
 * of itself, so the records do not depend on `jobs` or on which worker ran what. `onDone` is called after
 * each configuration (for the progress bar).
 */
export async function runPool(
  items: readonly { index: number; config: RunConfig }[],
  jobs: number,
  onDone: (rec: RunRecord) => void = () => {},
): Promise<RunRecord[]> {
  const out = new Map<number, RunRecord>();
  if (jobs <= 1 || items.length <= 1) {
    for (const it of items) {
      let rec: RunRecord;
      try {
        rec = runConfig(it.config, it.index);
      } catch (e) {
        throw new ConfigRunError(`${it.config.id}: ${e instanceof Error ? e.message : String(e)}`);
      }
      out.set(it.index, rec);
      onDone(rec);
    }
    return items.map((it) => out.get(it.index) as RunRecord);
  }
  const queue = [...items];
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let active = 0;
      let failed = false;
      const feed = (w: Worker) => {
        const next = queue.shift();
        if (next === undefined) {
          if (--active === 0) resolve();
          return;
        }
        w.postMessage(next);
      };
      for (let k = 0; k < Math.min(jobs, items.length); k++) {
        const w = startWorker();
        workers.push(w);
        active++;
        w.on(
          'message',
          (m: { ok: true; record: RunRecord } | { ok: false; index: number; error: string }) => {
            if (failed) return;
            if (!m.ok) {
              failed = true;
              const c = items.find((it) => it.index === m.index);
              reject(new ConfigRunError(`${c?.config.id ?? `configuration ${m.index}`}: ${m.error}`));
              return;
            }
            out.set(m.record.index, m.record);
            onDone(m.record);
            feed(w);
          },
        );
        w.on('error', (e) => {
          if (!failed) {
            failed = true;
            reject(new ConfigRunError(`a worker thread failed: ${e.message}`));
          }
        });
        feed(w);
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return items.map((it) => out.get(it.index) as RunRecord);
}
