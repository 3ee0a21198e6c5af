import type { DebugPlace, ScheduleDebug } from '@spf/labs';
import { el } from './element.js';

/** What the debugger needs from the page around it. */
export type DebuggerHost = {
  /** The student's current text of a lab file (for the source line of each CPU). */
  readonly source: (file: string) => string;
  /** Moves the editor to a line. */
  readonly goToLine: (file: string, line: number) => void;
  /** The address that reopens this failure at a step (1-based schedule step). */
  readonly link: (step: number) => string;
};

/** The effect kind of a step's text (`writer: rmw sem` -> `rmw`), for its colour. */
const kindOf = (did: string) => /: (\w[\w-]*)/.exec(did)?.[1] ?? 'other';

/**
 * The schedule debugger of one failing concurrency test: a per-CPU timeline (one column per CPU, one row
 * per step; it scrolls both ways, so any number of CPUs fits uncropped) and, for the current step, every
 * CPU's line of the student's code and the kernel code it called, the shared cells and who holds each lock.
 * Back/Forward (or the arrow keys), a slider, Play/Pause, and a link that reopens the same failure.
 */
export class ScheduleDebugger {
  readonly element: HTMLElement;
  private index: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly rows: HTMLTableRowElement[] = [];
  private readonly slider: HTMLInputElement;
  private readonly pos: HTMLElement;
  private readonly linkEl: HTMLAnchorElement;
  private readonly playBtn: HTMLButtonElement;
  private readonly state: HTMLElement;

  constructor(
    private readonly debug: ScheduleDebug,
    private readonly host: DebuggerHost,
  ) {
    this.index = debug.steps.length - 1;
    const button = (action: string, text: string, title: string) => {
      const b = el('button', { type: 'button', 'data-dbg': action, title }, text);
      return b;
    };
    const first = button('first', 'First', 'first step shown');
    const back = button('back', '◀ Back', 'previous step (←)');
    this.playBtn = button('play', 'Play', 'play the schedule from here; press again to pause');
    const forward = button('forward', 'Forward ▶', 'next step (→)');
    const last = button('last', 'Last', 'last step: where it failed');
    this.slider = el('input', {
      type: 'range',
      min: '0',
      max: String(debug.steps.length - 1),
      value: String(this.index),
      'aria-label': 'step',
      'data-dbg': 'slider',
    });
    this.pos = el('span', { class: 'wb-dbg-pos', 'data-dbg-pos': '' });
    this.linkEl = el(
      'a',
      { 'data-dbg-link': '', title: 'reopens this failure at this step' },
      'Link to this step',
    );
    first.addEventListener('click', () => this.go(0));
    back.addEventListener('click', () => this.go(this.index - 1));
    forward.addEventListener('click', () => this.go(this.index + 1));
    last.addEventListener('click', () => this.go(debug.steps.length - 1));
    this.playBtn.addEventListener('click', () => (this.timer ? this.pause() : this.play()));
    this.slider.addEventListener('input', () => this.go(Number(this.slider.value)));
    const controls = el(
      'div',
      { class: 'wb-dbg-controls' },
      first,
      back,
      this.playBtn,
      forward,
      last,
      this.slider,
      this.pos,
      this.linkEl,
    );
    const shown =
      debug.totalSteps > debug.steps.length
        ? `the last ${debug.steps.length} of ${debug.totalSteps} steps`
        : `all ${debug.totalSteps} steps`;
    const caption = el(
      'p',
      { class: 'wb-dbg-caption' },
      `Schedule debugger: ${debug.cpus} CPUs, ${shown}. Each row is one step: the CPU that ran and what it did. Click a row, or use ← and →.`,
    );
    this.state = el('div', { class: 'wb-dbg-state' });
    this.element = el(
      'div',
      { class: 'wb-debugger', 'data-debugger': '', tabindex: '0' },
      caption,
      controls,
      this.timeline(),
      this.state,
    );
    this.element.addEventListener('keydown', (e) => {
      if ((e.target as HTMLElement).tagName === 'INPUT') return;
      if (e.key === 'ArrowLeft') this.go(this.index - 1);
      else if (e.key === 'ArrowRight') this.go(this.index + 1);
      else return;
      e.preventDefault();
    });
    this.go(this.index);
    // Scroll the timeline to the current row once the debugger is on the page (it is built detached).
    requestAnimationFrame(() => {
      if (this.element.isConnected) this.go(this.index);
    });
  }

  /** The timeline table: one column per CPU, one row per step. */
  private timeline(): HTMLElement {
    const head = el('tr', {}, el('th', { scope: 'col' }, 'step'));
    for (let c = 0; c < this.debug.cpus; c++) head.append(el('th', { scope: 'col' }, `CPU ${c}`));
    const body = el('tbody');
    this.debug.steps.forEach((s, i) => {
      const tr = el('tr', { 'data-row': String(i) }, el('td', { class: 'wb-dbg-n' }, String(s.step + 1)));
      for (let c = 0; c < this.debug.cpus; c++) {
        tr.append(c === s.cpu ? el('td', { class: `wb-dbg-did k-${kindOf(s.did)}` }, s.did) : el('td'));
      }
      tr.addEventListener('click', () => this.go(i));
      this.rows.push(tr);
      body.append(tr);
    });
    return el(
      'div',
      { class: 'wb-dbg-timeline', 'data-dbg-timeline': '' },
      el('table', {}, el('thead', {}, head), body),
    );
  }

  /** Shows step `i` of the steps kept (clamped). */
  go(i: number): void {
    const n = this.debug.steps.length;
    const prev = this.index;
    this.index = Math.max(0, Math.min(n - 1, i));
    this.rows[prev]?.classList.remove('now');
    const row = this.rows[this.index];
    row.classList.add('now');
    const box = row.closest<HTMLElement>('.wb-dbg-timeline');
    if (box) {
      const top = row.offsetTop - box.clientHeight / 2;
      box.scrollTop = Math.max(0, top);
    }
    this.slider.value = String(this.index);
    const s = this.debug.steps[this.index];
    this.pos.textContent = `Step ${s.step + 1} of ${this.debug.totalSteps}`;
    this.element.dataset.step = String(s.step + 1);
    this.linkEl.href = this.host.link(s.step + 1);
    this.renderState();
    if (this.index === n - 1) this.pause();
  }

  /** Goes to the kept step whose schedule step number is `step` (1-based); false if it is not kept. */
  goToStep(step: number): boolean {
    const i = this.debug.steps.findIndex((s) => s.step + 1 === step);
    if (i < 0) return false;
    this.go(i);
    return true;
  }

  private play(): void {
    if (this.index === this.debug.steps.length - 1) this.go(0);
    this.playBtn.textContent = 'Pause';
    this.timer = setInterval(() => this.go(this.index + 1), 400);
  }

  /** Stops playing (the debugger stays at the step it reached). */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.playBtn.textContent = 'Play';
  }

  private codeCell(p: DebugPlace): HTMLElement {
    const td = el('td', { 'data-code': '' });
    if (!p.code) {
      td.append(el('span', { class: 'wb-dbg-muted' }, 'not in your code'));
      return td;
    }
    const { file, line, fn } = p.code;
    const b = el('button', { type: 'button', class: 'wb-dbg-line' }, `${file}:${line}`);
    b.addEventListener('click', () => this.host.goToLine(file, line));
    const src = this.host.source(file).split('\n')[line - 1]?.trim() ?? '';
    td.append(b, ` in ${fn} `, el('code', {}, src));
    return td;
  }

  private renderState(): void {
    const d = this.debug;
    const i = this.index;
    const s = d.steps[i];
    const before = i > 0 ? d.steps[i - 1] : undefined;
    const cpus = el(
      'table',
      { class: 'wb-dbg-cpus' },
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          ...['CPU', 'task', 'state', 'your code', 'kernel code', 'last did'].map((h) =>
            el('th', { scope: 'col' }, h),
          ),
        ),
      ),
    );
    const body = el('tbody');
    s.cpus.forEach((id, c) => {
      const p = d.places[id];
      const kernel = [p.call ? `calls ${p.call}` : '', p.via ? `from ${p.via}` : '']
        .filter(Boolean)
        .join(', ');
      body.append(
        el(
          'tr',
          { 'data-cpu': String(c), class: c === s.cpu ? 'ran' : '' },
          el('th', { scope: 'row' }, String(c)),
          el('td', {}, p.task ?? '—'),
          el('td', { 'data-state': '' }, p.state),
          this.codeCell(p),
          el('td', { 'data-kernel': '' }, kernel || '—'),
          el('td', {}, p.last || '—'),
        ),
      );
    });
    cpus.append(body);
    const cells = el('table', { class: 'wb-dbg-cells' }, el('caption', {}, 'shared cells'));
    d.cellNames.forEach((name, k) => {
      const changed = before !== undefined && before.cells[k] !== s.cells[k];
      cells.append(
        el(
          'tr',
          { 'data-cell': name, class: changed ? 'changed' : '' },
          el('th', { scope: 'row' }, name),
          el('td', { 'data-value': '' }, s.cells[k]),
        ),
      );
    });
    const locks = el(
      'table',
      { class: 'wb-dbg-locks' },
      el('caption', {}, 'locks'),
      el('tr', {}, ...['lock', 'held by', 'waiting'].map((h) => el('th', { scope: 'col' }, h))),
    );
    for (const id of s.locks) {
      const l = d.lockStates[id];
      locks.append(
        el(
          'tr',
          { 'data-lock': l.name },
          el('th', { scope: 'row' }, l.name),
          el('td', { 'data-holders': '' }, l.holders.join(', ') || 'nobody'),
          el('td', { 'data-waiters': '' }, l.waiters.join(', ') || '—'),
        ),
      );
    }
    this.state.replaceChildren(
      el('p', { class: 'wb-dbg-head' }, `Step ${s.step + 1}: CPU ${s.cpu} — ${s.did}`),
      el('div', { class: 'wb-dbg-scroll' }, cpus),
      el('div', { class: 'wb-dbg-side' }, cells, locks),
    );
  }
}
