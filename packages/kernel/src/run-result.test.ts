import { decodeSchedule, replay } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from './system.js';

function faultingSystem(policy?: ReturnType<typeof replay>) {
  const sys = boot({ cpus: 2, policy });
  sys.spawnProcess('p', function* (u) {
    const r = yield* u.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap: ${r.errno}`);
    for (let i = 0; i < 4; i++) yield* u.store8(r.value + i * 4096, i + 1);
  });
  return sys;
}

describe("System.run()'s result", () => {
  it('keeps the schedule unencoded until it is read (a long run nobody asks about pays nothing)', () => {
    const res = faultingSystem().run();
    expect(res.ok).toBe(true);
    // An own accessor, as on the machine's result: a copied value would have encoded every step already.
    const d = Object.getOwnPropertyDescriptor(res, 'schedule');
    expect(d?.get).toBeTypeOf('function');
    expect(decodeSchedule(res.schedule)).toHaveLength(res.steps);
    expect(res.processes).toEqual([{ pid: 1, name: 'p', status: { kind: 'exited', code: 0 } }]);
  });

  it('carries a schedule that replays the same run', () => {
    const first = faultingSystem().run();
    const again = faultingSystem(replay(first.schedule)).run();
    expect(again.ok).toBe(true);
    expect(again.traceHash).toBe(first.traceHash);
  });
});
