import {
  formatEarlierUse,
  type GradeReport,
  gradeWithWatchdog,
  type LabOutline,
  type TestResult,
  type WorkerPort,
} from '@spf/labs';
import { debugLinkHash, parseDebugLink } from './debug-link.js';
import type { LabEditor } from './editor.js';
import {
  exportProgress,
  importOverwrites,
  importProgress,
  type KeyValueStore,
  type LabProgress,
  loadFullMarksSolution,
  loadProgress,
  type SavedSolution,
  saveFullMarksSolution,
  saveProgress,
} from './progress-store.js';
import { ScheduleDebugger } from './schedule-debugger.js';
import { renderTimelineSvg } from './timeline.js';
import type { TypeStatus } from './type-check.js';
import { el } from './element.js';

/** Per-test time limit of a run in the page; an infinite loop is stopped after this. */
export const TEST_TIME_LIMIT_MS = 2000;

const STATUS_LABEL: Record<TestResult['status'], string> = {
  pass: 'passed',
  fail: 'failed',
  error: 'error',
  skipped: 'skipped',
  timeout: 'timeout',
};

/** Spawns the grading worker: a fresh module worker per run (Vite bundles it from this exact form). */
function spawnWorker(): WorkerPort {
  const w = new Worker(new URL('./grade-worker.ts', import.meta.url), { type: 'module' });
  return {
    post: (m) => w.postMessage(m),
    listen(onMessage, onError) {
      w.onmessage = (e) => onMessage(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        onError(e.message || 'the worker failed to start');
      };
    },
    terminate: () => w.terminate(),
  };
}

/** The workbench island of a lab page: editor, test runner, results, hints, reference, progress. */
export class Workbench {
  private readonly outline: LabOutline;
  private progress: LabProgress;
  private editor: LabEditor | null = null;
  private readonly q = <T extends Element>(sel: string) => this.root.querySelector<T>(sel) as T;
  private replayTimer: ReturnType<typeof setInterval> | undefined;
  /** The schedule debugger of each failing concurrency test shown. */
  private readonly debuggers = new Map<string, ScheduleDebugger>();

  constructor(
    private readonly root: HTMLElement,
    private readonly store: KeyValueStore = localStorage,
  ) {
    this.outline = JSON.parse(
      this.q<HTMLScriptElement>('script.wb-outline').textContent ?? '{}',
    ) as LabOutline;
    this.progress = loadProgress(store, this.outline);
  }

  private code(file: string): string {
    return this.progress.files[file] ?? this.outline.files.find((f) => f.name === file)?.starter ?? '';
  }

  private save(): void {
    try {
      saveProgress(this.store, this.progress);
    } catch (err) {
      // Storage full or disabled (some private modes): say so instead of losing work silently.
      this.setStatus(
        `Could not save your progress in this browser (${(err as Error).message}); use Export progress.`,
      );
    }
  }

  private setStatus(text: string): void {
    this.q<HTMLElement>('[data-status-line]').textContent = text;
  }

  async start(): Promise<void> {
    const first = this.outline.files[0].name;
    this.q<HTMLElement>('[data-placeholder]').textContent = this.code(first);
    if (this.progress.migratedFrom !== null && this.progress.lastReport === null) {
      const n = this.q<HTMLElement>('[data-notice]');
      n.textContent = `This lab was updated from version ${this.progress.migratedFrom} to ${this.outline.version}: your code was kept and the tests were refreshed. Run them again.`;
      n.hidden = false;
    }
    this.renderHints();
    this.renderEarlierChoice();
    this.renderReferenceButton();
    if (this.progress.lastReport) this.renderReport(this.progress.lastReport);
    this.bind();
    const { LabEditor } = await import('./editor.js');
    const files = Object.fromEntries(this.outline.files.map((f) => [f.name, this.code(f.name)]));
    const host = this.q<HTMLElement>('[data-editor]');
    host.replaceChildren();
    this.editor = new LabEditor(
      host,
      files,
      first,
      (file, text) => {
        this.progress.files[file] = text;
        this.save();
      },
      () => {
        if (!this.q<HTMLButtonElement>('[data-action="run"]').disabled) void this.run();
      },
    );
    this.selectTab(first);
    this.q<HTMLButtonElement>('[data-action="run"]').disabled = false;
    this.root.dataset.ready = 'true';
    this.setStatus('Edit the code, then press Run tests (or Ctrl-Enter in the editor).');
    await this.reopenLinkedFailure();
  }

  /**
   * A debugger link (`#debug=<test>&step=<n>&schedule=<s>`) grades the saved code again with that schedule
   * replayed in that test, and opens the test's debugger at step n.
   */
  private async reopenLinkedFailure(): Promise<void> {
    const link = parseDebugLink(location.hash);
    if (!link) return;
    if (!this.outline.tests.some((t) => t.id === link.test)) {
      this.setStatus(`The link names a test this lab does not have (${link.test}).`);
      return;
    }
    await this.run({ [link.test]: link.schedule });
    const dbg = this.debuggers.get(link.test);
    const li = this.root.querySelector<HTMLElement>(`li[data-test="${CSS.escape(link.test)}"]`);
    li?.scrollIntoView({ block: 'start' });
    if (!dbg) {
      this.setStatus(`Reopened ${link.test}: with your current code this schedule no longer fails.`);
      return;
    }
    if (!dbg.goToStep(link.step))
      this.setStatus(
        `Reopened ${link.test}; step ${link.step} is not among the steps kept, showing the last one.`,
      );
    else this.setStatus(`Reopened the failure of ${link.test} at step ${link.step}.`);
    dbg.element.focus();
  }

  private bind(): void {
    this.root.addEventListener('spf-types', (e) => {
      const { file, errors } = (e as CustomEvent<TypeStatus>).detail;
      const out = this.q<HTMLElement>('[data-type-status]');
      out.textContent =
        errors === null
          ? 'types: not checked (the checker failed to load)'
          : errors === 0
            ? `${file}: no type errors`
            : `${file}: ${errors} type error${errors === 1 ? '' : 's'}`;
      out.dataset.errors = String(errors ?? '');
      this.root.dataset.types = 'checked';
    });
    for (const b of this.root.querySelectorAll<HTMLButtonElement>('[data-file]')) {
      b.addEventListener('click', () => this.selectTab(b.dataset.file ?? ''));
    }
    this.q('[data-action="run"]').addEventListener('click', () => void this.run());
    this.q('[data-action="reset"]').addEventListener('click', () => this.resetFile());
    this.q('[data-action="hint"]').addEventListener('click', () => {
      this.progress.hintsShown = Math.min(this.progress.hintsShown + 1, this.outline.hints.length);
      this.save();
      this.renderHints();
    });
    this.q('[data-action="reference"]').addEventListener('click', () => void this.showReference());
    this.q('[data-action="export"]').addEventListener('click', () => this.exportAll());
    this.q<HTMLInputElement>('[data-action="import"]').addEventListener('change', (e) => {
      const input = e.target as HTMLInputElement;
      const file = input.files?.[0];
      if (file) void file.text().then((t) => this.importAll(t));
      input.value = '';
    });
  }

  private selectTab(file: string): void {
    this.editor?.show(file);
    for (const b of this.root.querySelectorAll<HTMLButtonElement>('[data-file]')) {
      b.setAttribute('aria-selected', String(b.dataset.file === file));
    }
  }

  private resetFile(): void {
    const file = this.editor?.file ?? this.outline.files[0].name;
    const starter = this.outline.files.find((f) => f.name === file)?.starter ?? '';
    if (!window.confirm(`Reset ${file} to the starter code? Your changes to ${file} will be lost.`)) return;
    this.editor?.setText(file, starter);
    this.progress.files[file] = starter;
    this.save();
    this.setStatus(`${file} was reset to the starter code.`);
  }

  private async run(schedules?: Readonly<Record<string, string>>): Promise<void> {
    const runBtn = this.q<HTMLButtonElement>('[data-action="run"]');
    runBtn.disabled = true;
    this.stopReplay();
    const sources = Object.fromEntries(
      this.outline.files.map((f) => [f.name, this.editor?.text(f.name) ?? '']),
    );
    const list = this.q<HTMLOListElement>('[data-results]');
    list.replaceChildren();
    this.q<HTMLElement>('[data-score]').textContent = '';
    this.setStatus('Running the tests…');
    const earlier = this.earlierToUse();
    const t0 = performance.now();
    // Progress while the tests run (a long one, such as Lab 7's performance test, takes seconds): tests done
    // out of all, the one running, and the time so far, refreshed four times a second.
    const bar = this.q<HTMLProgressElement>('[data-progress]');
    const total = this.outline.tests.length;
    let finished = 0;
    let current = '';
    bar.max = total;
    bar.value = 0;
    bar.hidden = false;
    const showProgress = () => {
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      this.root.dataset.testsDone = String(finished);
      this.setStatus(
        `Running the tests: ${finished} of ${Math.max(total, finished)} done${current ? `, now ${current}` : ''} (${s} s)…`,
      );
    };
    const ticker = setInterval(showProgress, 250);
    let report: GradeReport;
    try {
      report = await gradeWithWatchdog(this.outline, sources, spawnWorker, {
        testTimeLimitMs: TEST_TIME_LIMIT_MS,
        ...(schedules ? { schedules } : {}),
        ...(Object.keys(earlier).length > 0 ? { earlier } : {}),
        onStart: (id) => {
          current = this.outline.tests.find((t) => t.id === id)?.title ?? id;
          showProgress();
        },
        onResult: (r) => {
          finished++;
          // An earlier lab's tests (run on the student's saved solution) come on top of this lab's.
          bar.max = Math.max(total, finished);
          bar.value = finished;
          current = '';
          list.append(this.renderResult(r));
          showProgress();
        },
      });
    } finally {
      clearInterval(ticker);
      bar.hidden = true;
    }
    const ms = Math.round(performance.now() - t0);
    this.progress.lastReport = report;
    this.progress.bestScore = Math.max(this.progress.bestScore, report.score);
    this.progress.maxScore = report.maxScore;
    this.save();
    if (report.status === 'complete' && report.score === report.maxScore && !schedules)
      this.rememberSolution(sources);
    this.renderReport(report);
    this.renderReferenceButton();
    this.q<HTMLElement>('[data-notice]').hidden = true;
    this.root.dataset.lastRunMs = String(ms);
    const how =
      report.status === 'complete'
        ? ''
        : report.status === 'timeout'
          ? ' — stopped: a test ran too long (an infinite loop?)'
          : ` — ${report.error?.message ?? report.status}`;
    this.setStatus(`Graded in ${ms} ms${how}.`);
    runBtn.disabled = false;
  }

  /**
   * Remembers a full-marks solution in this browser, for the later labs that build on this one
   * (`LabOutline.buildsOn`): their workbench offers to run on it.
   */
  private rememberSolution(files: Record<string, string>): void {
    try {
      saveFullMarksSolution(this.store, { lab: this.outline.id, version: this.outline.version, files });
    } catch {
      // Storage full or disabled: later labs then run on the package's code, as without a solution.
    }
  }

  /** The saved full-marks solutions of the labs this one builds on, by lab id. */
  private savedEarlier(): Record<string, SavedSolution> {
    const out: Record<string, SavedSolution> = {};
    for (const id of this.outline.buildsOn ?? []) {
      const s = loadFullMarksSolution(this.store, id);
      if (s) out[id] = s;
    }
    return out;
  }

  /** What this run hands the grader as earlier solutions: the saved ones, unless the student unticked it. */
  private earlierToUse(): Record<string, Record<string, string>> {
    const box = this.root.querySelector<HTMLInputElement>('[data-action="use-earlier"]');
    if (!box || !box.checked) return {};
    return Object.fromEntries(Object.entries(this.savedEarlier()).map(([id, s]) => [id, { ...s.files }]));
  }

  /** The choice to run on the student's own earlier solutions, when this lab builds on others. */
  private renderEarlierChoice(): void {
    const label = this.root.querySelector<HTMLElement>('[data-earlier]');
    if (!label) return;
    const saved = Object.keys(this.savedEarlier());
    const box = this.q<HTMLInputElement>('[data-action="use-earlier"]');
    if (saved.length === 0) return;
    box.disabled = false;
    box.checked = true;
    this.q<HTMLElement>('[data-earlier-text]').textContent =
      `Run on my own full-marks ${saved.join(' and ')} solution${saved.length > 1 ? 's' : ''}, saved in this browser (its tests run as regression tests, worth no points here).`;
  }

  private renderReport(report: GradeReport): void {
    const earlierReport = this.q<HTMLElement>('[data-earlier-report]');
    earlierReport.replaceChildren(...(report.earlier ?? []).map((e) => el('p', {}, formatEarlierUse(e))));
    earlierReport.hidden = (report.earlier ?? []).length === 0;
    const score = this.q<HTMLElement>('[data-score]');
    score.textContent = `Score: ${report.score}/${report.maxScore}`;
    score.dataset.full = String(report.score === report.maxScore);
    const err = this.q<HTMLElement>('[data-error]');
    err.replaceChildren();
    err.hidden = !report.error;
    if (report.error) {
      const where = report.error.file
        ? `${report.error.file}${report.error.line ? `:${report.error.line}` : ''}: `
        : '';
      err.append(el('strong', {}, report.status === 'syntax-error' ? 'Syntax error. ' : 'Could not run. '));
      err.append(report.error.message.startsWith(`${report.error.file}:`) ? '' : where, report.error.message);
      if (report.error.file && report.error.line)
        err.append(' ', this.lineButton(report.error.file, report.error.line));
    }
    this.q<HTMLOListElement>('[data-results]').replaceChildren(
      ...report.results.map((r) => this.renderResult(r)),
    );
  }

  private lineButton(file: string, line: number): HTMLButtonElement {
    const b = el('button', { type: 'button', class: 'wb-link' }, `go to ${file}:${line}`);
    b.addEventListener('click', () => this.editor?.goToLine(file, line));
    return b;
  }

  private renderResult(r: TestResult): HTMLLIElement {
    const test = this.outline.tests.find((t) => t.id === r.id);
    const head = el(
      'div',
      { class: 'wb-result-head' },
      el('span', { class: `wb-badge wb-${r.status}` }, STATUS_LABEL[r.status]),
      el('span', { class: 'wb-name' }, el('span', { class: 'wb-title' }, r.title), ' ', el('code', {}, r.id)),
      el('span', { class: 'wb-points' }, `${r.points}/${r.maxPoints} pts`),
    );
    const meta = el(
      'div',
      { class: 'wb-cat', title: r.parent ? `runs only if ${r.parent} passes` : '' },
      r.category + (r.parent ? ` · after ${r.parent}` : ''),
    );
    const li = el('li', { 'data-test': r.id, 'data-status': r.status }, head, meta);
    if (r.status !== 'pass') {
      if (test?.description) li.append(el('div', { class: 'wb-desc' }, test.description));
      if (r.message) li.append(el('div', { class: 'wb-message' }, r.message));
      const d = r.details;
      if (d.expected !== undefined || d.actual !== undefined) {
        li.append(
          el(
            'dl',
            { class: 'wb-diff' },
            el('dt', {}, 'expected'),
            el('dd', { 'data-expected': '' }, d.expected ?? ''),
            el('dt', {}, 'actual'),
            el('dd', { 'data-actual': '' }, d.actual ?? ''),
          ),
        );
      }
      if (d.notes?.length) li.append(el('pre', { class: 'wb-notes' }, d.notes.join('\n')));
      if (d.file && d.line) li.append(this.lineButton(d.file, d.line));
      if (d.schedule) {
        li.append(el('div', { class: 'wb-schedule' }, 'schedule: ', el('code', {}, d.schedule)));
      }
      if (d.debug) {
        const debug = d.debug;
        const dbg = new ScheduleDebugger(debug, {
          source: (file) => this.editor?.text(file) ?? this.code(file),
          goToLine: (file, line) => this.editor?.goToLine(file, line),
          link: (step) =>
            `${location.pathname}#${debugLinkHash({ test: r.id, step, schedule: debug.schedule })}`,
        });
        this.debuggers.get(r.id)?.pause();
        this.debuggers.set(r.id, dbg);
        li.append(dbg.element);
      } else if (d.trace) {
        const box = el('div', { class: 'wb-timeline' });
        box.innerHTML = renderTimelineSvg(d.trace);
        const replay = el('button', { type: 'button', 'data-action': 'replay' }, 'Replay');
        replay.addEventListener('click', () => this.replay(box));
        li.append(replay, box);
      }
    }
    if (r.output) li.append(el('pre', { class: 'wb-output' }, r.output));
    return li;
  }

  /** Steps a highlight through the timeline's rows, as the schedule ran them. */
  private replay(box: HTMLElement): void {
    this.stopReplay();
    const rows = [...box.querySelectorAll<SVGGElement>('g.row')];
    let i = 0;
    this.replayTimer = setInterval(() => {
      rows.forEach((g) => {
        g.classList.toggle('now', g.dataset.row === String(i));
      });
      rows[i]?.scrollIntoView({ block: 'nearest' });
      if (++i > rows.length) this.stopReplay();
    }, 250);
  }

  private stopReplay(): void {
    clearInterval(this.replayTimer);
    this.replayTimer = undefined;
    for (const d of this.debuggers.values()) d.pause();
  }

  private renderHints(): void {
    const shown = this.progress.hintsShown;
    const total = this.outline.hints.length;
    this.q<HTMLOListElement>('[data-hints]').replaceChildren(
      ...this.outline.hints.slice(0, shown).map((h) =>
        // `code` spans in hints become <code>; everything else is text.
        el('li', {}, ...h.split('`').map((part, i) => (i % 2 === 1 ? el('code', {}, part) : part))),
      ),
    );
    const b = this.q<HTMLButtonElement>('[data-action="hint"]');
    b.textContent = shown < total ? `Show hint ${shown + 1} of ${total}` : 'All hints shown';
    b.disabled = shown >= total;
  }

  private renderReferenceButton(): void {
    const b = this.q<HTMLButtonElement>('[data-action="reference"]');
    const unlocked = this.progress.bestScore >= this.progress.maxScore && this.progress.maxScore > 0;
    b.disabled = !unlocked;
    b.textContent = unlocked ? 'Show the reference solution' : 'Reference solution: unlocked at full marks';
  }

  /**
   * The reference solution is not in the page or the grader's bundle: it is a separate chunk
   * (`@spf/labs/reference`), fetched only when a student with full marks asks for it.
   */
  private async showReference(): Promise<void> {
    if (this.progress.bestScore < this.progress.maxScore) return;
    const { referenceSources } = await import('@spf/labs/reference');
    const reference = referenceSources(this.outline);
    const box = this.q<HTMLElement>('[data-reference]');
    box.replaceChildren(
      ...this.outline.files.flatMap((f) => [
        el('h4', {}, f.name),
        el('pre', { class: 'wb-ref-code' }, reference[f.name] ?? ''),
      ]),
    );
    box.hidden = false;
  }

  private exportAll(): void {
    const blob = new Blob([JSON.stringify(exportProgress(this.store), null, 2)], {
      type: 'application/json',
    });
    const a = el('a', { href: URL.createObjectURL(blob), download: 'spf-course-progress.json' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    this.setStatus('Progress exported as spf-course-progress.json.');
  }

  private importAll(json: string): void {
    try {
      const overwrites = importOverwrites(this.store, json);
      if (overwrites.length > 0) {
        const what = overwrites
          .map((o) => `${o.lab} (version ${o.version}): ${o.files.join(', ')}`)
          .join('\n');
        const ok = window.confirm(
          `Importing this file replaces the code saved in this browser for:\n${what}\n\nExport your progress first if you want to keep it. Import anyway?`,
        );
        if (!ok) {
          this.setStatus('Import cancelled: nothing was changed.');
          return;
        }
      }
      const n = importProgress(this.store, json);
      this.progress = loadProgress(this.store, this.outline);
      for (const f of this.outline.files) this.editor?.setText(f.name, this.code(f.name));
      this.renderHints();
      this.renderReferenceButton();
      if (this.progress.lastReport) this.renderReport(this.progress.lastReport);
      this.setStatus(`Imported ${n} saved lab record${n === 1 ? '' : 's'}.`);
    } catch (err) {
      this.setStatus(`Import failed: ${(err as Error).message}`);
    }
  }
}
