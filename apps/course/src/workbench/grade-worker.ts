/// <reference lib="webworker" />
import { type GradeRequest, serveGradeRequest, type WorkerMessage } from '@spf/labs';

// A fresh module worker grades one run. Student code loads here, never in the page: it cannot touch the
// DOM. Network and storage APIs are removed before it loads; results go out through a saved reference.
const scope = self as unknown as DedicatedWorkerGlobalScope & Record<string, unknown>;
const post = scope.postMessage.bind(scope);
for (const name of [
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'EventSource',
  'indexedDB',
  'caches',
  'importScripts',
]) {
  try {
    Object.defineProperty(scope, name, { value: undefined, configurable: false, writable: false });
  } catch {
    // some are not configurable in some browsers; the worker still has no page access
  }
}
scope.onmessage = (e: MessageEvent<GradeRequest>) => {
  scope.onmessage = null;
  void serveGradeRequest(e.data, (m: WorkerMessage) => post(m));
};
