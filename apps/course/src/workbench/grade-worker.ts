/// <reference lib="webworker" />
import { type GradeRequest, serveGradeRequest, type WorkerMessage } from '@spf/labs';
import { lockDownWorker } from './worker-sandbox.js';

// A fresh module worker grades one run. Student code loads here, never in the page: it cannot touch the
// DOM. Network and storage APIs are removed before it loads; results go out through a saved reference.
const post = lockDownWorker();
const scope = self as unknown as DedicatedWorkerGlobalScope;
scope.onmessage = (e: MessageEvent<GradeRequest>) => {
  scope.onmessage = null;
  void serveGradeRequest(e.data, (m: WorkerMessage) => post(m));
};
