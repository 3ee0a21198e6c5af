/// <reference lib="webworker" />
import { lockDownWorker } from '../workbench/worker-sandbox.js';
import { runPlayground } from './run-playground.js';

// A fresh module worker runs one playground program: the user's code runs here, never in the page. Network
// and storage APIs are removed first; the page terminates the worker if the run takes too long.
const post = lockDownWorker();
const scope = self as unknown as DedicatedWorkerGlobalScope;
scope.onmessage = (e: MessageEvent<unknown>) => {
  scope.onmessage = null;
  post(runPlayground(e.data));
};
