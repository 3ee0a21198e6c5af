import { gradeSources } from './grade.js';
import { getLab } from './registry.js';
import type { GradeRequest, WorkerMessage } from './worker-protocol.js';

/**
 * The worker side of a grading run (browser Web Worker or Node worker thread): grades the request with the
 * bundled tests of the named lab and posts progress and the report through `post`.
 */
export async function serveGradeRequest(req: GradeRequest, post: (m: WorkerMessage) => void): Promise<void> {
  try {
    const lab = getLab(req.lab);
    const earlier = Object.entries(req.earlier ?? {}).map(([id, sources]) => ({ lab: getLab(id), sources }));
    const report = await gradeSources(
      lab,
      req.sources,
      {
        onStart: (t) =>
          post({
            type: 'start',
            test: t.id,
            ...(t.timeoutMs === undefined ? {} : { timeoutMs: t.timeoutMs }),
          }),
        onResult: (result) => post({ type: 'result', result }),
        ...(req.schedules === undefined ? {} : { schedules: req.schedules }),
      },
      earlier,
    );
    post({ type: 'done', report });
  } catch (err) {
    post({ type: 'crash', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  }
}
