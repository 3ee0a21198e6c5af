import { javascript } from '@codemirror/lang-javascript';
import { EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { editorTheme } from '../workbench/editor-theme.js';
import { el } from '../workbench/element.js';
import { renderTimelineSvg } from '../workbench/timeline.js';
import { PLAYGROUND_EXAMPLES } from './examples.js';
import type { PlaygroundResult, Snapshot, TaskCounters } from './run-playground.js';
import {
  DEFAULT_SETTINGS,
  decodeShareFragment,
  encodeShareFragment,
  type PlaygroundSettings,
  validateSettings,
} from './settings.js';

/** localStorage key of the last edited program and settings. */
export const PLAYGROUND_STORAGE_KEY = 'spf-course:playground:v1';
/** A run that takes longer than this is stopped (the worker is terminated). */
const RUN_TIME_LIMIT_MS = 60_000;
/** Timeline rows drawn (the last ones of the run). */
const TIMELINE_ROWS = 300;

/**
 * The playground page: a CodeMirror editor for a user program or replay script, the machine's settings, a
 * fresh worker per run (the only place user code runs), and the result panels: output, kernel log,
 * processes with per-task fault counters, each snapshot's /proc/self/maps and page tables, vmstat, the
 * per-CPU timeline (the labs' `renderTimelineSvg`), a Chrome trace download and a shareable link.
 */
export class Playground {
  private view!: EditorView;
  private worker: Worker | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private chromeTrace: string | null = null;

  constructor(private readonly root: HTMLElement) {}

  private q<T extends HTMLElement>(sel: string): T {
    const e = this.root.querySelector<T>(sel);
    if (!e) throw new Error(`playground: missing ${sel}`);
    return e;
  }

  private field<T extends HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(name: string): T {
    return this.q<T>(`[data-field="${name}"]`);
  }

  start(): void {
    const { settings, notice } = this.initialSettings();
    const host = this.q<HTMLElement>('[data-editor]');
    host.replaceChildren();
    this.view = new EditorView({
      parent: host,
      state: EditorState.create({
        doc: settings.source,
        extensions: [
          basicSetup,
          javascript({ typescript: true }),
          editorTheme,
          EditorView.lineWrapping,
          Prec.highest(
            keymap.of([
              {
                key: 'Mod-Enter',
                run: () => {
                  this.run();
                  return true;
                },
              },
            ]),
          ),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) this.save();
          }),
        ],
      }),
    });
    this.showSettings(settings);
    for (const f of this.root.querySelectorAll<HTMLElement>('[data-field]')) {
      if (f.dataset.field === 'example') continue;
      f.addEventListener('change', () => this.save());
    }
    this.field<HTMLSelectElement>('example').addEventListener('change', (e) => {
      const id = (e.target as HTMLSelectElement).value;
      const ex = PLAYGROUND_EXAMPLES.find((x) => x.id === id);
      if (!ex) return;
      this.showSettings(ex.settings);
      this.view.dispatch({
        changes: { from: 0, to: this.view.state.doc.length, insert: ex.settings.source },
      });
      this.save();
    });
    const run = this.q<HTMLButtonElement>('[data-action="run"]');
    run.addEventListener('click', () => this.run());
    run.disabled = false;
    this.q<HTMLButtonElement>('[data-action="share"]').addEventListener('click', () => this.share());
    this.q<HTMLButtonElement>('[data-action="trace"]').addEventListener('click', () => this.downloadTrace());
    this.status(notice ?? 'Ready: press Run (or Ctrl-Enter in the editor).');
  }

  /** A shared link wins over the saved program, which wins over the first example. */
  private initialSettings(): { settings: PlaygroundSettings; notice: string | null } {
    try {
      const shared = decodeShareFragment(location.hash);
      if (shared) return { settings: shared, notice: 'Loaded the shared program: press Run.' };
    } catch (e) {
      this.error(`${(e as Error).message}`);
    }
    try {
      const saved = localStorage.getItem(PLAYGROUND_STORAGE_KEY);
      if (saved) return { settings: validateSettings(JSON.parse(saved)), notice: null };
    } catch {
      // a damaged saved program: start from the first example
    }
    return {
      settings: PLAYGROUND_EXAMPLES[0]?.settings ?? { ...DEFAULT_SETTINGS, source: '' },
      notice: null,
    };
  }

  private showSettings(s: PlaygroundSettings): void {
    this.field<HTMLSelectElement>('mode').value = s.mode;
    this.field<HTMLInputElement>('cpus').value = String(s.cpus);
    this.field<HTMLInputElement>('policy').value = s.policy;
    this.field<HTMLInputElement>('explore').value = String(s.explore);
    this.field<HTMLInputElement>('seed').value = String(s.seed);
    this.field<HTMLSelectElement>('handler').value = s.handler;
    this.field<HTMLSelectElement>('mmapLock').value = s.mmapLock;
    this.field<HTMLTextAreaElement>('specOptions').value = s.specOptions.join('\n');
  }

  /** The settings as the form and the editor show them (not validated). */
  private readSettings(): Record<string, unknown> {
    return {
      mode: this.field<HTMLSelectElement>('mode').value,
      source: this.view.state.doc.toString(),
      cpus: Number(this.field<HTMLInputElement>('cpus').value),
      policy: this.field<HTMLInputElement>('policy').value.trim(),
      explore: Number(this.field<HTMLInputElement>('explore').value || 0),
      seed: Number(this.field<HTMLInputElement>('seed').value || 0),
      handler: this.field<HTMLSelectElement>('handler').value,
      mmapLock: this.field<HTMLSelectElement>('mmapLock').value,
      specOptions: this.field<HTMLTextAreaElement>('specOptions')
        .value.split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
    };
  }

  private save(): void {
    try {
      localStorage.setItem(PLAYGROUND_STORAGE_KEY, JSON.stringify(this.readSettings()));
    } catch {
      // storage full or disabled: the program stays in the editor
    }
  }

  private status(text: string): void {
    this.q<HTMLElement>('[data-status]').textContent = text;
  }

  private error(text: string | null): void {
    const e = this.q<HTMLElement>('[data-error]');
    e.hidden = text === null;
    e.textContent = text ?? '';
  }

  private share(): void {
    let fragment: string;
    try {
      fragment = encodeShareFragment(validateSettings(this.readSettings()));
    } catch (e) {
      this.error((e as Error).message);
      return;
    }
    history.replaceState(null, '', `#${fragment}`);
    const link = this.q<HTMLInputElement>('[data-link]');
    link.hidden = false;
    link.value = location.href;
    link.select();
    void navigator.clipboard?.writeText(location.href).then(
      () => this.status('Link copied: it carries the program and the settings.'),
      () => this.status('Copy the link below: it carries the program and the settings.'),
    );
  }

  private downloadTrace(): void {
    if (this.chromeTrace === null) return;
    const url = URL.createObjectURL(new Blob([this.chromeTrace], { type: 'application/json' }));
    const a = el('a', { href: url, download: 'spf-playground-trace.json' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  private stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.worker?.terminate();
    this.worker = null;
  }

  run(): void {
    let settings: PlaygroundSettings;
    try {
      settings = validateSettings(this.readSettings());
    } catch (e) {
      this.error((e as Error).message);
      return;
    }
    this.save();
    this.stop();
    this.error(null);
    const run = this.q<HTMLButtonElement>('[data-action="run"]');
    run.disabled = true;
    this.status(settings.explore > 0 ? `Exploring up to ${settings.explore} schedules…` : 'Running…');
    const t0 = performance.now();
    const w = new Worker(new URL('./playground-worker.ts', import.meta.url), { type: 'module' });
    this.worker = w;
    const done = () => {
      this.stop();
      run.disabled = false;
    };
    w.onmessage = (e: MessageEvent<PlaygroundResult>) => {
      done();
      this.show(e.data, performance.now() - t0);
    };
    w.onerror = (e) => {
      e.preventDefault();
      done();
      this.error(`The worker failed: ${e.message || 'it did not start'}`);
      this.status('Failed.');
    };
    this.timer = setTimeout(() => {
      done();
      this.error(
        `Stopped after ${RUN_TIME_LIMIT_MS / 1000} s: make the program smaller (fewer pages, threads or schedules).`,
      );
      this.status('Stopped.');
    }, RUN_TIME_LIMIT_MS);
    w.postMessage(settings);
  }

  private show(r: PlaygroundResult, ms: number): void {
    const out = this.q<HTMLElement>('[data-results]');
    out.replaceChildren();
    this.chromeTrace = r.chromeTrace;
    this.q<HTMLButtonElement>('[data-action="trace"]').disabled = r.chromeTrace === null;
    if (r.error !== null) {
      this.error(r.error);
      this.status('Could not run.');
      return;
    }
    const box = el('div', { class: 'pg-results' });
    const summary = `${r.steps} steps, ${(r.time / 1000).toFixed(2)} µs simulated, ${Math.round(ms)} ms in this tab`;
    const explored = r.explored
      ? ` Explored ${r.explored.runs} schedule(s) of ${r.explored.policy}: ${r.explored.found ? 'this one fails' : 'none failed (showing one)'}.`
      : '';
    this.status(`${r.failure ? 'The run stopped with a failure' : 'Done'}: ${summary}.${explored}`);
    if (r.failure) {
      box.append(
        el('h3', {}, `Failure: ${r.failure.kind}`),
        el(
          'div',
          { class: 'pg-failure', 'data-failure': '' },
          el('pre', {}, r.failure.report),
          el('p', {}, 'Schedule (replays this run exactly): ', el('code', {}, r.failure.schedule)),
        ),
      );
    }
    if (r.replayOutput !== null)
      box.append(el('h3', {}, 'spf replay output'), el('pre', { 'data-replay': '' }, r.replayOutput));
    if (r.printed.length)
      box.append(el('h3', {}, 'Output'), el('pre', { 'data-output': '' }, r.printed.join('\n')));
    if (r.log.length) box.append(el('h3', {}, 'Kernel log'), el('pre', { 'data-log': '' }, r.log.join('\n')));
    if (r.processes.length) {
      const rows = r.processes.flatMap((p) =>
        (p.tasks.length ? p.tasks : [null]).map((t, i) =>
          el(
            'tr',
            {},
            el('td', {}, i === 0 ? `${p.pid} ${p.name}` : ''),
            el('td', {}, i === 0 ? p.status : ''),
            ...counterCells(t),
          ),
        ),
      );
      box.append(
        el('h3', {}, 'Processes and per-task fault counters'),
        el(
          'table',
          { 'data-processes': '' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ...['process', 'status', 'task', 'CPU', 'minflt', 'majflt'].map((h) => el('th', {}, h)),
            ),
          ),
          el('tbody', {}, ...rows),
        ),
      );
    }
    if (r.snapshots.length) {
      box.append(el('h3', {}, 'Snapshots: /proc/self/maps and page tables'));
      for (const s of r.snapshots) box.append(snapshotPanel(s, true));
    }
    if (r.vmstat) box.append(el('h3', {}, 'vmstat'), el('pre', {}, r.vmstat));
    if (r.trace && r.trace.events.length) {
      const tl = el('div', { class: 'pg-timeline', 'data-timeline': '' });
      tl.innerHTML = renderTimelineSvg(r.trace, {
        maxRows: TIMELINE_ROWS,
        label: 'per-CPU timeline of the run',
      });
      const shown = Math.min(TIMELINE_ROWS, r.trace.events.length);
      box.append(
        el('h3', {}, 'Per-CPU timeline'),
        el(
          'p',
          {},
          `The last ${shown} of ${r.trace.events.length} recorded steps${r.traceFull ? ' (the trace was full: later steps were not recorded)' : ''}. Download the Chrome trace for all of them and open it in `,
          el('a', { href: 'https://ui.perfetto.dev', target: '_blank', rel: 'noopener' }, 'Perfetto'),
          '.',
        ),
        tl,
      );
    }
    out.append(box);
  }
}

function counterCells(t: TaskCounters | null): HTMLTableCellElement[] {
  if (!t) return [el('td', {}, '-'), el('td', {}, ''), el('td', {}, ''), el('td', {}, '')];
  return [
    el('td', {}, String(t.tid)),
    el('td', {}, String(t.cpu)),
    el('td', {}, String(t.minflt)),
    el('td', {}, String(t.majflt)),
  ];
}

function snapshotPanel(s: Snapshot, open: boolean): HTMLElement {
  const d = el(
    'details',
    { class: 'pg-snapshot', 'data-snapshot': s.label },
    el('summary', {}, `${s.label} — pid ${s.pid} (${s.process}), t=${s.time} ns`),
    el('div', {}, el('strong', {}, '/proc/self/maps')),
    el('pre', { 'data-maps': '' }, s.maps || '(no mappings)'),
    el('div', {}, el('strong', {}, 'Page tables'), ' (one line per non-empty entry, with its flags)'),
    el('pre', { 'data-pagetables': '' }, s.pageTables || '(empty)'),
    el(
      'div',
      {},
      el('strong', {}, 'Fault counters: '),
      s.tasks.map((t) => `task ${t.tid} on CPU ${t.cpu}: minflt ${t.minflt}, majflt ${t.majflt}`).join('; '),
    ),
  );
  d.open = open;
  return d;
}
