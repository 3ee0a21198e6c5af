/// <reference lib="webworker" />
import type { TypeCheckRequest, TypeCheckResponse } from './type-check-protocol.js';
import { handleTypeCheck } from './type-check-service.js';

// The editor's TypeScript worker: answers type-check requests (type-check-service.ts) off the page's thread.
const scope = self as unknown as DedicatedWorkerGlobalScope;
scope.onmessage = (e: MessageEvent<TypeCheckRequest>) => {
  let res: TypeCheckResponse;
  try {
    res = handleTypeCheck(e.data);
  } catch (err) {
    res = { id: e.data.id, kind: 'failed', message: (err as Error).message };
  }
  scope.postMessage(res);
};
