import type { Sources } from './worker-protocol.js';
import type { DebugPlace, DebugStep, ScheduleDebug } from './schedule-debug.js';

// The schedule debugger as text (the CLI's timeline and its stepper): one line per step for the timeline,
// and a full view of one step (every CPU's line, the cells and the locks) for stepping.

/** What a lock looked like after a step, in one line. */
function lockLine(debug: ScheduleDebug, s: DebugStep): string {
  return s.locks
    .map((id) => {
      const l = debug.lockStates[id];
      const held = l.holders.length ? l.holders.join(', ') : 'nobody';
      return `${l.name}: held by ${held}${l.waiters.length ? `; waiting: ${l.waiters.join(', ')}` : ''}`;
    })
    .join(' | ');
}

function cellLine(debug: ScheduleDebug, s: DebugStep): string {
  return debug.cellNames.map((n, i) => `${n}=${s.cells[i]}`).join(' ');
}

/**
 * The timeline as text, one line per step (any number of CPUs: nothing is cropped), with the cells after
 * each step: `  step 55  CPU 3  writer: rmw sem  | sem.count=1`. Keeps the last `last` steps.
 */
export function formatDebugTimeline(debug: ScheduleDebug, last = 16): string[] {
  const steps = debug.steps.slice(-last);
  const w = Math.max(...steps.map((s) => s.did.length), 10);
  const lines = steps.map(
    (s) =>
      `step ${String(s.step + 1).padStart(5)}  CPU ${String(s.cpu).padEnd(3)} ${s.did.padEnd(w)}  | ${cellLine(debug, s)}`,
  );
  if (debug.totalSteps > steps.length)
    lines.unshift(`(the last ${steps.length} of ${debug.totalSteps} steps)`);
  return lines;
}

/** The source line `line` of `file`, trimmed, if the sources are known. */
function sourceLine(sources: Sources | undefined, file: string, line: number): string | undefined {
  const text = sources?.[file];
  const l = text?.split('\n')[line - 1];
  return l === undefined ? undefined : l.trim();
}

function placeLines(cpu: number, p: DebugPlace, sources: Sources | undefined): string[] {
  const head = `CPU ${cpu}  ${(p.task ?? '-').padEnd(9)} ${p.state.padEnd(8)}`;
  if (!p.code) return [`${head} not in your code; last did: ${p.last || 'nothing yet'}`];
  const src = sourceLine(sources, p.code.file, p.code.line);
  const out = [`${head} ${p.code.file}:${p.code.line} in your ${p.code.fn}${src ? `:  ${src}` : ''}`];
  const pad = ' '.repeat(head.length + 1);
  const kernel = [p.call ? `calls ${p.call}` : '', p.via ? `called from ${p.via}` : '']
    .filter(Boolean)
    .join('; ');
  if (kernel) out.push(`${pad}kernel: ${kernel}`);
  out.push(`${pad}last did: ${p.last || 'nothing yet'}`);
  return out;
}

/**
 * One step of the schedule in full: what ran, then every CPU's line of the student's code (with the
 * source text when `sources` has the files) and the kernel code it called, the cells and the locks.
 */
export function formatDebugStep(debug: ScheduleDebug, index: number, sources?: Sources): string {
  const s = debug.steps[index];
  const lines = [
    `Step ${s.step + 1} of ${debug.totalSteps} (${index + 1}/${debug.steps.length} shown): CPU ${s.cpu} ${s.did}`,
  ];
  s.cpus.forEach((id, c) => {
    lines.push(...placeLines(c, debug.places[id], sources).map((l) => `  ${l}`));
  });
  if (debug.cellNames.length) lines.push(`  cells: ${cellLine(debug, s)}`);
  if (s.locks.length) lines.push(`  locks: ${lockLine(debug, s)}`);
  return lines.join('\n');
}

/**
 * Runs the text stepper over `debug`: reads commands from `nextLine` (`n` or Enter: forward, `p`: back,
 * a number: that schedule step, `f`/`l`: first/last shown step, `q`: quit) and prints each step with
 * `print`. Starts at the last step (where the run failed). Ends at `q` or when input ends.
 */
export async function stepThrough(
  debug: ScheduleDebug,
  nextLine: () => Promise<string | null>,
  print: (text: string) => void,
  sources?: Sources,
): Promise<void> {
  let i = debug.steps.length - 1;
  const help = 'commands: n (or Enter) next, p previous, <step number> go there, f first, l last, q quit';
  print(help);
  print(formatDebugStep(debug, i, sources));
  for (;;) {
    const raw = await nextLine();
    if (raw === null) return;
    const cmd = raw.trim();
    if (cmd === 'q') return;
    if (cmd === '' || cmd === 'n') i = Math.min(i + 1, debug.steps.length - 1);
    else if (cmd === 'p') i = Math.max(i - 1, 0);
    else if (cmd === 'f') i = 0;
    else if (cmd === 'l') i = debug.steps.length - 1;
    else if (/^\d+$/.test(cmd)) {
      const want = Number(cmd) - 1;
      const at = debug.steps.findIndex((s) => s.step === want);
      if (at < 0) {
        print(`step ${cmd} is not among the steps shown (${debug.steps[0].step + 1}..${debug.totalSteps})`);
        continue;
      }
      i = at;
    } else {
      print(help);
      continue;
    }
    print(formatDebugStep(debug, i, sources));
  }
}
