import type { Kernel } from '@spf/machine';
import { Errno, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { BootConfigError, boot, MAX_MEMORY } from './system.js';
import type { UserContext } from './user-context.js';

const RW = PROT_READ | PROT_WRITE;

/** Runs `program` as a process and returns the run's failure message (undefined if it ran cleanly). */
function failureOf(program: (u: UserContext, base: number) => Kernel<unknown>) {
  const sys = boot();
  sys.spawnProcess('misuse', function* (u) {
    const r = yield* u.mmap(0, 4096, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap errno ${r.errno}`);
    yield* program(u, r.value);
  });
  const res = sys.run();
  return { ok: res.ok, kind: res.failure?.kind, message: res.failure?.message };
}

describe('misuse of the user-access API stops the run with a typed report, never a host exception', () => {
  const cases: [string, (u: UserContext, base: number) => Kernel<unknown>, string][] = [
    [
      'a NaN address',
      (u) => u.load8(Number.NaN),
      'the address must be a whole number from 0 to 2^53 - 1, got NaN',
    ],
    ['a fractional address', (u, b) => u.store8(b + 0.5, 1), 'the address must be a whole number'],
    ['a negative address', (u) => u.fetch8(-4096), 'got -4096'],
    ['a bigint byte', (u, b) => u.store8(b, 5n as unknown as number), 'got the bigint 5n (pass a number)'],
    [
      'a fractional value',
      (u, b) => u.store8(b, 1.5),
      'the value must be a whole number (its low 8 bits are stored), got 1.5',
    ],
    [
      'a negative length',
      (u, b) => u.loadBytes(b, -1),
      'the length must be a whole number from 0 to 2^32, got -1',
    ],
    [
      'data that is not bytes',
      (u, b) => u.storeBytes(b, [1, 2] as unknown as Uint8Array),
      'must be a Uint8Array',
    ],
  ];
  for (const [what, program, message] of cases) {
    it(`${what}`, () => {
      const f = failureOf(program);
      expect(f.ok).toBe(false);
      expect(f.message).toContain(message);
      expect(f.message).not.toMatch(/TypeError|RangeError|Cannot mix BigInt/);
    });
  }
});

describe('wait(2)', () => {
  it('returns ECHILD for a pid that is not a child, for itself, and for a child already reaped', () => {
    const sys = boot({ cpus: 2 });
    const out: string[] = [];
    sys.spawnProcess('parent', function* (u) {
      const show = (r: { ok: boolean; errno?: number; value?: unknown }) =>
        r.ok ? `ok ${JSON.stringify(r.value)}` : `errno ${r.errno}`;
      out.push(show(yield* u.wait(999)));
      out.push(show(yield* u.wait(u.pid)));
      const f = yield* u.fork(function* (c) {
        yield* c.exit(3);
      }, 1);
      if (!f.ok) throw new Error(`fork errno ${f.errno}`);
      out.push(show(yield* u.wait(f.value)));
      out.push(show(yield* u.wait(f.value)));
    });
    const res = sys.run();
    expect(res.failure?.message).toBeUndefined();
    expect(out).toEqual([
      `errno ${Errno.ECHILD}`,
      `errno ${Errno.ECHILD}`,
      'ok {"kind":"exited","code":3}',
      `errno ${Errno.ECHILD}`,
    ]);
  });
});

describe('mmap(2) through a process', () => {
  it('without MAP_ANONYMOUS and without a file returns EBADF and maps nothing', () => {
    const sys = boot();
    let r: unknown;
    let maps = '?';
    sys.spawnProcess('badf', function* (u) {
      r = yield* u.mmap(0, 4096, RW, MAP_PRIVATE);
      maps = u.maps();
    });
    expect(sys.run().ok).toBe(true);
    expect(r).toEqual({ ok: false, errno: Errno.EBADF });
    expect(maps).toBe('');
  });
});

describe('boot({ memory })', () => {
  it(`refuses more than ${MAX_MEMORY} bytes, or a size that is not whole frames, with a BootConfigError naming the limit`, () => {
    for (const memory of [2 ** 40, MAX_MEMORY + 4096, 1000, Number.NaN, -4096, 4096]) {
      expect(() => boot({ memory }), String(memory)).toThrow(BootConfigError);
    }
    expect(() => boot({ memory: 2 ** 40 })).toThrow(/to 68719476736 \(64 GiB, the limit/);
    expect(boot({ memory: 2 ** 20 }).mem.size).toBe(2 ** 20);
  });
});
