import { parentPort } from 'node:worker_threads';
import { serveGradeRequest } from '../serve-grade-request.js';
import type { GradeRequest } from '../worker-protocol.js';

// The Node worker thread behind `spf-grade`: one grading request per worker.
parentPort?.once('message', (req: GradeRequest) => {
  void serveGradeRequest(req, (m) => parentPort?.postMessage(m));
});
