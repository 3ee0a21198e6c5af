/// <reference lib="webworker" />

/**
 * Removes the network and storage APIs from a worker's global scope before student or user code loads there,
 * and returns the worker's `postMessage` (saved first, so results still go out). The one lockdown of the
 * grading worker and the playground's worker. Code in such a worker has no DOM and no page access.
 */
export function lockDownWorker(): (message: unknown) => void {
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
  return post;
}
