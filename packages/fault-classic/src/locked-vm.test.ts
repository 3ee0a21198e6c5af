import {
  MAP_GROWSDOWN,
  MAP_LOCKED,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  munmapSync,
  mremapSync,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtureProblems, makeFixture } from './test-support/fixture.js';

const P = 4096;
const A = 0x3000_0000;
const RW = PROT_READ | PROT_WRITE;

afterEach(() => {
  expect(fixtureProblems()).toEqual([]);
});

describe('locked_vm of VM_LOCKED memory', () => {
  it('a locked stack grown by a fault counts each new page once, and unmapping it returns to zero', () => {
    const fx = makeFixture();
    fx.mmapAnon(A + 16 * P, 4, RW, MAP_PRIVATE | MAP_GROWSDOWN | MAP_LOCKED);
    expect(fx.mm.lockedVm).toBe(4);
    // A write three pages below the stack: the fault path expands it (expand_downwards) to 7 pages.
    expect(fx.touch(A + 13 * P, 'w')).toMatchObject({ ok: true });
    expect(fx.mm.findVma(A + 13 * P)?.vmStart).toBe(A + 13 * P);
    expect(fx.mm.lockedVm).toBe(7);
    expect(fx.mm.totalVm).toBe(7);
    expect(munmapSync(fx.mm, A, 32 * P).ok).toBe(true);
    expect(fx.mm.lockedVm).toBe(0);
    expect(fx.mm.totalVm).toBe(0);
  });

  it('mremap of locked memory moves, grows and shrinks locked_vm with it', () => {
    const fx = makeFixture();
    fx.mmapAnon(A, 4, RW, MAP_PRIVATE | MAP_LOCKED);
    fx.mmapAnon(A + 4 * P, 1, RW); // an unlocked neighbour: growing in place is impossible
    expect(fx.mm.lockedVm).toBe(4);
    const grown = mremapSync(fx.mm, A, 4 * P, 6 * P, MREMAP_MAYMOVE);
    if (!grown.ok) throw new Error(`mremap: errno ${grown.errno}`);
    expect(grown.value).not.toBe(A);
    expect(fx.mm.lockedVm).toBe(6);
    expect(mremapSync(fx.mm, grown.value, 6 * P, 2 * P, 0).ok).toBe(true);
    expect(fx.mm.lockedVm).toBe(2);
    expect(munmapSync(fx.mm, grown.value, 2 * P).ok).toBe(true);
    expect(fx.mm.lockedVm).toBe(0);
    expect(munmapSync(fx.mm, A + 4 * P, P).ok).toBe(true);
    expect(fx.mm.totalVm).toBe(0);
  });
});
