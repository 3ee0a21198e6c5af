import { describe, expect, it } from 'vitest';
import { MmIds } from './mm-ids.js';
import { MmStruct } from './mm-struct.js';
import { procMaps } from './proc-maps.js';
import { forkSync, mmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;
const S = 0x2000_0000;
const RW = PROT_READ | PROT_WRITE;

/** An mm (with `ids`, or its own) mapping private then shared anonymous memory; returns names a user sees. */
function build(ids?: MmIds) {
  const { mm } = makeSystem(ids ? { ids } : {});
  for (const [addr, flags] of [
    [A, MAP_PRIVATE],
    [S, MAP_SHARED],
  ] as const) {
    const r = mmapSync(mm, { addr, len: 2 * P, prot: RW, flags: flags | MAP_ANONYMOUS | MAP_FIXED });
    if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
  }
  touch(mm, A);
  return mm;
}

describe('MmIds: one id space per simulated system', () => {
  it('an mm built alone numbers from zero every time, shmem inodes from 1', () => {
    const names = () => {
      const mm = build();
      return [mm.name, ...[...mm.vmas()].map(String), `anon_vma#${mm.findVma(A)?.anonVma?.id}`, procMaps(mm)];
    };
    const first = names();
    expect(first.slice(0, 4)).toEqual([
      'mm#0',
      'vma#0[10000000-10002000 rw-p]',
      'vma#1[20000000-20002000 rw-s]',
      'anon_vma#0',
    ]);
    expect(first[4]).toContain('20000000-20002000 rw-s 00000000 00:01 1 ');
    expect(names()).toEqual(first);
  });

  it('mms sharing an id space, and a fork child, never reuse a number', () => {
    const ids = new MmIds();
    const a = build(ids);
    const b = build(ids);
    expect([a.name, b.name]).toEqual(['mm#0', 'mm#1']);
    expect(procMaps(b)).toContain(' 00:01 2 '); // a's shared mapping took inode 1
    const child = forkSync(a);
    expect(child.ids).toBe(ids);
    expect(child.id).toBe(2);
    const vmaIds = [a, b, child].flatMap((mm) => [...mm.vmas()].map((v) => v.id));
    expect(new Set(vmaIds).size).toBe(vmaIds.length);
    // anon_vma_fork() gave the child its own anon_vma, numbered after a's and b's.
    expect(child.findVma(A)?.anonVma?.id).toBe(2);
    expect(new MmStruct(child.childConfig()).ids).toBe(ids);
  });
});
