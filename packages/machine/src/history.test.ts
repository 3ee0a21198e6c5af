import { describe, expect, it } from 'vitest';
import type { Cpu } from './cpu.js';
import { EffectKind } from './effects.js';
import { History } from './history.js';

/** A CPU as History sees it: its id, its clock after the effect, and what it runs. */
function cpu(id: number, clock: number, task: string | null = 't', inIrq = false): Cpu {
  return {
    id,
    clock,
    irq: inIrq ? {} : null,
    current: task === null ? null : { name: task },
  } as unknown as Cpu;
}

describe('History', () => {
  it('hashes every step (FNV-1a over CPU, kind, line and end clock) into the trace hash', () => {
    const h = new History(24, false);
    expect(h.traceHash).toBe('811c9dc5'); // the FNV offset basis: nothing recorded
    h.record(cpu(0, 100), EffectKind.Delay, -1, 'd', 0, 0);
    h.record(cpu(1, 160), EffectKind.Rmw, 3, 'x', 100, 1);
    h.record(cpu(0, 5_000_000_007), EffectKind.Read, 0, 'y', 5_000_000_000, 2);
    // Computed independently (Python, 32-bit arithmetic by masking).
    expect(h.traceHash).toBe('e7cdab03');
    expect(h.effects).toBe(3);
    // Any field of any step changes it.
    const variants = [
      [1, 12, -1, 100],
      [0, 13, -1, 100],
      [0, 12, 0, 100],
      [0, 12, -1, 101],
    ].map(([c, k, l, end]) => {
      const v = new History(0, false);
      v.record(cpu(c, end), k, l, 'd', 0, 0);
      return v.traceHash;
    });
    const base = new History(0, false);
    base.record(cpu(0, 100), 12, -1, 'd', 0, 0);
    expect(new Set([base.traceHash, ...variants]).size).toBe(5);
    expect(base.traceHash).toMatch(/^[0-9a-f]{8}$/);
  });

  it('pads the hash to 8 hex digits', () => {
    // Search a small space for a hash with a leading zero digit, to check the padding.
    let found = '';
    for (let end = 0; end < 5000 && found === ''; end++) {
      const h = new History(0, false);
      h.record(cpu(0, end), 0, 0, '', 0, 0);
      if (h.traceHash.startsWith('0')) found = h.traceHash;
    }
    expect(found).toHaveLength(8);
  });

  it('keeps the last `length` events, oldest first, for failure reports', () => {
    const h = new History(4, false);
    expect(h.lastEvents()).toEqual([]);
    for (let s = 0; s < 3; s++) h.record(cpu(s % 2, 10 * s + 5), EffectKind.Write, 0, `w${s}`, 10 * s, s);
    expect(h.lastEvents()).toEqual([
      { step: 0, cpu: 0, time: 0, what: 'write w0' },
      { step: 1, cpu: 1, time: 10, what: 'write w1' },
      { step: 2, cpu: 0, time: 20, what: 'write w2' },
    ]);
    for (let s = 3; s < 10; s++) h.record(cpu(1, 10 * s + 5), EffectKind.Fence, -1, '', 10 * s, s);
    expect(h.lastEvents()).toEqual(
      [6, 7, 8, 9].map((s) => ({ step: s, cpu: 1, time: 10 * s, what: 'fence' })),
    );
    const none = new History(0, false);
    none.record(cpu(0, 1), 0, 0, 'x', 0, 0);
    expect(none.lastEvents()).toEqual([]);
    expect(none.effects).toBe(1);
  });

  it('records a full trace only when asked, naming the task, an IPI handler or an idle CPU', () => {
    expect(new History(4, false).recorder).toBe(null);
    expect(new History(4, undefined).recorder).toBe(null);
    const h = new History(4, true);
    h.record(cpu(2, 130, 'worker'), EffectKind.Rmw, 7, 'lock', 100, 5);
    h.record(cpu(1, 40, 'worker', true), EffectKind.Ipi, -1, 'irq: flush', 10, 6);
    h.record(cpu(0, 9, null), EffectKind.Ipi, -1, 'irq: x', 9, 7);
    expect(h.recorder?.events).toEqual([
      { cpu: 2, time: 100, dur: 30, kind: 'rmw', label: 'lock', task: 'worker', step: 5 },
      { cpu: 1, time: 10, dur: 30, kind: 'ipi', label: 'irq: flush', task: 'irq', step: 6 },
      { cpu: 0, time: 9, dur: 0, kind: 'ipi', label: 'irq: x', task: 'idle', step: 7 },
    ]);
    const capped = new History(4, { limit: 2 });
    for (let s = 0; s < 5; s++) capped.record(cpu(0, s), EffectKind.Fence, -1, '', s, s);
    expect(capped.recorder?.events).toHaveLength(2);
    expect(capped.recorder?.dropped).toBe(3);
    expect(h.recorder?.limit).toBe(5_000_000);
  });
});
