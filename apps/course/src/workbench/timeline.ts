import type { CompactTrace } from '@spf/machine';

/** One row of the timeline: the step, its CPU, and what that CPU did. */
export type TimelineRow = {
  readonly step: number;
  readonly cpu: number;
  readonly time: number;
  readonly text: string;
  readonly kind: string;
};

const esc = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);

/** The trace's events in step order, each as readable text (`rmw sem.count`), keeping the last `max`. */
export function timelineRows(trace: CompactTrace, max = 80): TimelineRow[] {
  const rows = trace.events.map(([cpu, time, , kind, label, task, step]) => {
    const k = trace.strings[kind] ?? '?';
    const l = trace.strings[label] ?? '';
    const t = trace.strings[task] ?? '';
    return { step, cpu, time, kind: k, text: `${t ? `${t}: ` : ''}${k}${l ? ` ${l}` : ''}` };
  });
  rows.sort((a, b) => a.step - b.step || a.cpu - b.cpu);
  return rows.slice(-max);
}

const COLORS: Record<string, string> = {
  read: '#cfe8ff',
  write: '#ffd6a5',
  rmw: '#ffadad',
  block: '#bdb2ff',
  wake: '#caffbf',
  relax: '#eeeeee',
};

/**
 * Draws a per-CPU timeline in the style of OSTEP's x86.py: one column per CPU, time running down, one row
 * per scheduled step showing what that CPU did; the rest of the row is empty because the other CPUs did
 * not run at that step. Rows carry `data-row` so a Replay button can highlight them one after another.
 */
export function renderTimelineSvg(
  trace: CompactTrace,
  opts: { maxRows?: number; label?: string } = {},
): string {
  const rows = timelineRows(trace, opts.maxRows ?? 80);
  const colW = 230;
  const rowH = 18;
  const left = 64;
  const top = 24;
  const width = left + colW * trace.cpus + 8;
  const height = top + rowH * rows.length + 8;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" aria-label="${esc(opts.label ?? 'per-CPU timeline of the failing schedule')}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-monospace, monospace" font-size="11">`,
    `<text x="4" y="15" font-weight="bold">step</text>`,
  ];
  for (let c = 0; c < trace.cpus; c++) {
    parts.push(`<text x="${left + c * colW + 4}" y="15" font-weight="bold">CPU ${c}</text>`);
    parts.push(
      `<line x1="${left + c * colW}" y1="${top - 4}" x2="${left + c * colW}" y2="${height - 4}" stroke="#999" stroke-width="0.5"/>`,
    );
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const x = left + r.cpu * colW;
    const fill = COLORS[r.kind] ?? '#f4f4f4';
    const label = r.text.length > 34 ? `${r.text.slice(0, 33)}…` : r.text;
    parts.push(
      `<g class="row" data-row="${i}"><title>step ${r.step}, t=${r.time} ns, CPU ${r.cpu}: ${esc(r.text)}</title>` +
        `<rect class="hl" x="0" y="${y}" width="${width}" height="${rowH}" fill="transparent"/>` +
        `<text x="4" y="${y + 13}" fill="#555">${r.step}</text>` +
        `<rect x="${x + 2}" y="${y + 1}" width="${colW - 4}" height="${rowH - 2}" rx="3" fill="${fill}" stroke="#888" stroke-width="0.5"/>` +
        `<text x="${x + 6}" y="${y + 13}" fill="#111">${esc(label)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}
