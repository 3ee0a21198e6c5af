import { formatFailure, random } from '@spf/machine';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from './system.js';

const A = 0x4000_0000;
const S = 0x5000_0000;
const RW = PROT_READ | PROT_WRITE;
const P = 4096;

/** What one run shows a user: the maps of both processes, object names, and the failure report and trace. */
type Observed = {
  readonly maps: string[];
  readonly anonVmas: number[];
  readonly report: string;
  readonly labels: string[];
};

/**
 * Boots a two-CPU system (random policy, seed 7) whose process maps private and shared anonymous memory,
 * forks, and has a second thread mprotect part of it; the parent then mprotects (splitting a VMA), breaks its mm on purpose and
 * runs the invariant checker, whose failure report names the mm, VMAs and anon_vma.
 */
function runOnce(): Observed {
  const sys = boot({ cpus: 2, policy: random(7), seed: 7, trace: true });
  const maps: string[] = [];
  const anonVmas: number[] = [];
  sys.spawnProcess('parent', function* (u) {
    expect((yield* u.mmap(A, 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)).ok).toBe(true);
    expect((yield* u.mmap(S, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)).ok).toBe(true);
    yield* u.store8(A, 1);
    yield* u.store8(S, 2);
    yield* u.spawnThread(function* (t) {
      yield* t.mprotect(A + P, P, PROT_READ);
    }, 1);
    const r = yield* u.fork(function* (c) {
      yield* c.store8(A + 2 * P, 3); // the child's own anon_vma (anon_vma_fork)
      maps.push(c.maps());
      anonVmas.push(c.process.mm.findVma(A + 2 * P)?.anonVma?.id ?? -1);
    }, 1);
    expect(r.ok).toBe(true);
    yield* u.store8(A + 3 * P, 4);
    expect((yield* u.mprotect(A + 3 * P, P, PROT_READ)).ok).toBe(true);
    maps.push(u.maps());
    const av = u.process.mm.findVma(A)?.anonVma;
    anonVmas.push(av?.id ?? -1);
    // A deliberately broken mm (an anon_vma marked freed while VMAs still link to it) for the invariant
    // checker to report: its message names the mm, the VMAs and the anon_vma.
    if (av) av.freed = true;
    sys.assertInvariants();
  });
  const res = sys.run();
  expect(res.ok).toBe(false);
  const failure = res.failure;
  if (failure === null) throw new Error('the run was meant to fail');
  return {
    maps,
    anonVmas,
    report: formatFailure(failure),
    labels: (res.trace ?? []).map((e) => JSON.stringify(e)),
  };
}

describe('object ids are per simulated system, not per host process', () => {
  it('two systems booted one after the other with the same config and seed name everything alike', () => {
    const first = runOnce();
    const second = runOnce();
    // The first system numbers from zero: the shmem inode of its first shared mapping is 1, the first mm 0.
    expect(first.maps.join('\n')).toMatch(
      /^50000000-50002000 rw-s 00000000 00:01 1 +\/dev\/zero \(deleted\)$/m,
    );
    expect(first.report).toMatch(
      /mm\[1\]: vma#\d+\[40000000-40001000 rw-p\] is linked to anon_vma#\d+, which was freed/m,
    );
    expect(first.labels.join('\n')).toMatch(/"vma#\d+"/);
    expect(second.maps).toEqual(first.maps);
    expect(second.anonVmas).toEqual(first.anonVmas);
    expect(second.report).toBe(first.report);
    expect(second.labels).toEqual(first.labels);
  });
});
