import { gradeTranspiled } from '../grade-transpiled.js';
import { loadInstructorTests, withInstructorTests } from './instructor-tests.js';
import { getLab } from '../registry.js';
import { withAncestors } from '../test-chain.js';
import type { WorkerMessage } from '../worker-protocol.js';
import type { SandboxRequest } from './sandbox-protocol.js';

// The sandboxed child process behind `spf-grade` (started by sandbox.ts): it grades one request and exits.
// Node runs it with the permission model (no file writes, reads only of the packages it loads, no child
// processes, no workers), with code generation from strings disabled and with frozen intrinsics, so
// student code can neither reach the host nor patch the builtins the grader relies on. Before any student
// code loads, this file keeps what it needs (the IPC channel, the secret in a closure) and removes from the
// global scope what student code could misuse: `process` (IPC, exit, kill, getBuiltinModule) and the
// network APIs, which Node 20's permission model does not cover.

const send = process.send?.bind(process);
const exit = process.exit.bind(process);
const HIDDEN_GLOBALS = ['process', 'fetch', 'WebSocket', 'EventSource', 'Request', 'Response', 'navigator'];

function hideHostGlobals(): void {
  for (const name of HIDDEN_GLOBALS) {
    Object.defineProperty(globalThis, name, { value: undefined, writable: false, configurable: false });
  }
}

if (!send) {
  console.error('sandbox-child: start me through spf-grade (I need an IPC channel)');
  exit(2);
}

/** A record of strings from an IPC message (anything else is dropped). */
function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

process.once('message', (raw: SandboxRequest) => void serve(raw));

async function serve(raw: SandboxRequest): Promise<void> {
  const secret = String(raw.secret);
  const post = (message: WorkerMessage, then?: () => void) =>
    send?.({ secret, message }, undefined, {}, () => then?.());
  let lab: ReturnType<typeof getLab>;
  try {
    lab = getLab(String(raw.lab));
    // The instructor's tests load before any student code (they are the grader's, not the student's).
    if (Array.isArray(raw.testFiles) && raw.testFiles.length > 0)
      lab = withInstructorTests(lab, await loadInstructorTests(raw.testFiles.map(String)));
    if (raw.only !== undefined) lab = withAncestors(lab, String(raw.only));
  } catch (err) {
    post({ type: 'crash', message: (err as Error).message }, () => exit(0));
    return;
  }
  const js = new Map(raw.js.map(([f, code]) => [String(f), String(code)]));
  hideHostGlobals();
  const earlier = (Array.isArray(raw.earlier) ? raw.earlier : []).map(([id, files]) => ({
    lab: getLab(String(id)),
    js: Array.isArray(files)
      ? new Map(files.map(([f, code]) => [String(f), String(code)] as const))
      : { error: String((files as { error?: unknown }).error) },
  }));
  gradeTranspiled(
    lab,
    js,
    {
      onStart: (t) =>
        post({ type: 'start', test: t.id, ...(t.timeoutMs === undefined ? {} : { timeoutMs: t.timeoutMs }) }),
      onResult: (result) => post({ type: 'result', result }),
      ...(raw.schedules === undefined ? {} : { schedules: stringRecord(raw.schedules) }),
    },
    earlier,
  ).then(
    (report) => post({ type: 'done', report }, () => exit(0)),
    (err) =>
      post(
        { type: 'crash', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) },
        () => exit(0),
      ),
  );
}
