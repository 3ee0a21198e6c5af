import type { WorkerMessage } from '../worker-protocol.js';

/** Parent to sandbox: grade these transpiled files; `secret` authenticates every answer. */
export type SandboxRequest = {
  readonly type: 'grade';
  readonly lab: string;
  readonly js: ReadonlyArray<readonly [file: string, code: string]>;
  readonly secret: string;
  /** Run only this test (and its ancestors). */
  readonly only?: string;
  /** An instructor's test modules (absolute paths) to run after the lab's own tests. */
  readonly testFiles?: readonly string[];
  /** Schedules to replay instead of exploring, by test id. */
  readonly schedules?: Readonly<Record<string, string>>;
  /** Earlier labs' solutions, transpiled in the parent (or why they did not transpile), by lab id. */
  readonly earlier?: ReadonlyArray<
    readonly [
      lab: string,
      js: ReadonlyArray<readonly [file: string, code: string]> | { readonly error: string },
    ]
  >;
};

/** Sandbox to parent: a worker message with the run's secret. */
export type SandboxMessage = { readonly secret: string; readonly message: WorkerMessage };

/** True if `raw` is a sandbox message carrying `secret` (compared in time independent of the content). */
export function isAuthentic(raw: unknown, secret: string): raw is SandboxMessage {
  if (typeof raw !== 'object' || raw === null) return false;
  const s = (raw as { secret?: unknown }).secret;
  if (typeof s !== 'string' || s.length !== secret.length) return false;
  let diff = 0;
  for (let i = 0; i < s.length; i++) diff |= s.charCodeAt(i) ^ secret.charCodeAt(i);
  const m = (raw as { message?: unknown }).message;
  return diff === 0 && typeof m === 'object' && m !== null;
}
