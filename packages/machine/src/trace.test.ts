import { describe, expect, it } from 'vitest';
import { effectKindNames } from './effects.js';
import { type TraceEvent, TraceRecorder, toChromeTrace, toCompactTrace } from './trace.js';

const events: TraceEvent[] = [
  { cpu: 0, time: 1500, dur: 60, kind: 'rmw', label: 'lock', task: 'a', step: 3 },
  { cpu: 1, time: 2000, dur: 0, kind: 'fence', label: '', task: 'irq', step: 4 },
  { cpu: 1, time: 2000, dur: 8, kind: 'rmw', label: 'lock', task: 'b', step: 5 },
];

describe('TraceRecorder', () => {
  it('keeps events up to its limit and counts the rest as dropped', () => {
    const r = new TraceRecorder(2);
    for (const e of events) r.add(e);
    expect(r.events).toEqual(events.slice(0, 2));
    expect(r.dropped).toBe(1);
    const none = new TraceRecorder(0);
    none.add(events[0]);
    expect(none.events).toEqual([]);
    expect(none.dropped).toBe(1);
  });
});

describe('toChromeTrace', () => {
  it('names the process and one thread per CPU, and makes each event a complete event in microseconds', () => {
    expect(toChromeTrace(events, 2)).toEqual({
      displayTimeUnit: 'ns',
      traceEvents: [
        { name: 'process_name', ph: 'M', pid: 0, tid: 0, args: { name: 'spf machine' } },
        { name: 'thread_name', ph: 'M', pid: 0, tid: 0, args: { name: 'CPU 0' } },
        { name: 'thread_name', ph: 'M', pid: 0, tid: 1, args: { name: 'CPU 1' } },
        {
          name: 'rmw lock',
          cat: 'rmw',
          ph: 'X',
          pid: 0,
          tid: 0,
          ts: 1.5,
          dur: 0.06,
          args: { task: 'a', step: 3 },
        },
        // a zero-length event is drawn half a nanosecond long, so that it stays visible
        {
          name: 'fence',
          cat: 'fence',
          ph: 'X',
          pid: 0,
          tid: 1,
          ts: 2,
          dur: 0.0005,
          args: { task: 'irq', step: 4 },
        },
        {
          name: 'rmw lock',
          cat: 'rmw',
          ph: 'X',
          pid: 0,
          tid: 1,
          ts: 2,
          dur: 0.008,
          args: { task: 'b', step: 5 },
        },
      ],
    });
  });
});

describe('toCompactTrace', () => {
  it('interns every string once, the effect kinds first in their numbering', () => {
    const t = toCompactTrace(events, 2);
    const n = effectKindNames.length;
    expect(t.version).toBe(1);
    expect(t.cpus).toBe(2);
    expect(t.strings).toEqual([...effectKindNames, 'lock', 'a', '', 'irq', 'b']);
    const rmw = effectKindNames.indexOf('rmw');
    const fence = effectKindNames.indexOf('fence');
    expect(t.events).toEqual([
      [0, 1500, 60, rmw, n, n + 1, 3],
      [1, 2000, 0, fence, n + 2, n + 3, 4],
      [1, 2000, 8, rmw, n, n + 4, 5],
    ]);
    // a label equal to a kind's name reuses the kind's string
    const again = toCompactTrace([{ ...events[0], label: 'read' }], 1);
    expect(again.events[0][4]).toBe(effectKindNames.indexOf('read'));
    expect(again.strings).toHaveLength(n + 1);
  });
});
