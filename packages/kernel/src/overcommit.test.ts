import type { Kernel } from '@spf/machine';
import {
  Errno,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { BootConfigError, type BootConfig, boot } from './system.js';
import type { UserContext } from './user-context.js';

const MiB = 2 ** 20;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const ENOMEM = { ok: false, errno: Errno.ENOMEM };

/** Runs `program` in a process of a machine booted with `config` and returns what it recorded. */
function run(config: BootConfig, program: (u: UserContext, out: unknown[]) => Kernel<void>) {
  const sys = boot(config);
  const out: unknown[] = [];
  sys.spawnProcess('oc', (u) => program(u, out));
  const res = sys.run();
  expect(res.failure?.message).toBeUndefined();
  return out;
}

describe('overcommit accounting of a booted system (256 MiB, no swap, OVERCOMMIT_GUESS by default)', () => {
  it('refuses private writable and shared mappings larger than the machine with ENOMEM; a failed call changes nothing', () => {
    const out = run({}, function* (u, o) {
      o.push(yield* u.mmap(0, 300 * MiB, RW, PRIV));
      o.push(yield* u.mmap(0, 300 * MiB, PROT_READ, MAP_SHARED | MAP_ANONYMOUS));
      o.push(u.maps() === '' && u.process.mm.committed === 0);
      // MAP_NORESERVE and read-only private memory are not charged.
      o.push((yield* u.mmap(0, 300 * MiB, RW, PRIV | MAP_NORESERVE)).ok);
      const ro = yield* u.mmap(0, 300 * MiB, PROT_READ, PRIV);
      if (!ro.ok) throw new Error(`mmap errno ${ro.errno}`);
      const maps = u.maps();
      o.push(yield* u.mprotect(ro.value, 300 * MiB, RW)); // mprotect_fixup charges
      o.push(u.maps() === maps);
      o.push(yield* u.mprotect(ro.value, 200 * MiB, RW)); // fits
      // mremap growing an accounted mapping is charged the growth.
      const small = yield* u.mmap(0, MiB, RW, PRIV);
      if (!small.ok) throw new Error(`mmap errno ${small.errno}`);
      const before = u.maps();
      o.push(yield* u.mremap(small.value, MiB, 258 * MiB, MREMAP_MAYMOVE));
      o.push(u.maps() === before);
      o.push((yield* u.mremap(small.value, MiB, 200 * MiB, MREMAP_MAYMOVE)).ok);
    });
    expect(out).toEqual([
      ENOMEM,
      ENOMEM,
      true,
      true,
      ENOMEM,
      true,
      { ok: true, value: 0 },
      ENOMEM,
      true,
      true,
    ]);
  });

  it('the mode is an option: always maps anything, never stops at the commit limit, and fork inherits it', () => {
    const always = run({ overcommit: { mode: 'always' } }, function* (u, o) {
      o.push((yield* u.mmap(0, 1024 * MiB, RW, PRIV)).ok);
    });
    expect(always).toEqual([true]);
    // never: limit 50% of 64 MiB = 8192 pages, less the 2 MiB admin reserve and the user reserve share.
    const never = run({ memory: 64 * MiB, overcommit: { mode: 'never' } }, function* (u, o) {
      o.push((yield* u.mmap(0, 24 * MiB, RW, PRIV)).ok);
      o.push(yield* u.mmap(0, 8 * MiB, RW, PRIV)); // 32 MiB committed would pass the limit
      const f = yield* u.fork(function* (c) {
        o.push(yield* c.mmap(0, 8 * MiB, RW, PRIV)); // the child's mm is charged against the same limit
      });
      if (f.ok) yield* u.wait(f.value);
    });
    expect(never).toEqual([true, ENOMEM, ENOMEM]);
  });

  it('refuses a bad overcommit option with a BootConfigError', () => {
    expect(() => boot({ overcommit: { mode: 'sometimes' as 'never' } })).toThrow(BootConfigError);
    expect(() => boot({ overcommit: { swapPages: -1 } })).toThrow(/totalSwapPages must be a whole number/);
  });
});
