import { EffectKind, exploreInTest, type Machine, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { DEFAULT_RLIMIT_STACK, expandDownwards } from './expand-stack.js';
import { checkMmInvariants } from './mm-invariants.js';
import { type MmConfig, MmStruct } from './mm-struct.js';
import { mmapSync } from './sync-api.js';
import { type RecordedEffect, recordEffects } from './test-support/effects.js';
import { withReadLock, withWriteLock } from './test-support/mmap-lock.js';
import type { VmArea } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  VM_LOCKED,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;

function map(mm: MmStruct, addr: number, pages: number, prot = RW, extra = 0): VmArea {
  expect(mmapSync(mm, { addr, len: pages * P, prot, flags: FLAGS | extra })).toEqual({
    ok: true,
    value: addr,
  });
  return mm.findVma(addr) as VmArea;
}
const expand = (mm: MmStruct, vma: VmArea, addr: number, rlimit?: number) =>
  withReadLock(mm, () => expandDownwards(mm, vma, addr, rlimit));
/** A stack [A+20P, A+22P) in an mm with a 4-page guard gap. */
function stackMm(config: MmConfig = {}) {
  const mm = new MmStruct({ stackGuardGap: 4 * P, ...config });
  const stack = map(mm, A + 20 * P, 2, RW, MAP_GROWSDOWN);
  return { mm, stack };
}
const state = (mm: MmStruct, v: VmArea) => ({
  start: v.vmStart,
  pgoff: v.vmPgoff,
  totalVm: mm.totalVm,
  stackVm: mm.stackVm,
  lockedVm: mm.lockedVm,
  seq: runSync(v.vmSequence.rawReadSeqcount()),
});

describe('expand_downwards', () => {
  it('grows a VM_GROWSDOWN VMA down, keeps the guard gap, and refuses non-stacks', () => {
    const mm = new MmStruct({ stackGuardGap: 4 * P });
    map(mm, A, 1);
    const stack = map(mm, A + 20 * P, 2, RW, MAP_GROWSDOWN);
    const plain = mm.vmaLookup(A) as VmArea;
    const pgoff = stack.vmPgoff;
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 10 * P + 5))).toBe(0);
    expect([stack.vmStart, stack.vmPgoff]).toEqual([A + 10 * P, pgoff - 10]);
    expect(stack.anonVma).not.toBeNull();
    // Within the guard gap (4 pages) of the VMA below: ENOMEM.
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 3 * P))).toBe(Errno.ENOMEM);
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 5 * P))).toBe(0);
    expect(withWriteLock(mm, () => expandDownwards(mm, plain, A - P))).toBe(Errno.EFAULT);
    expect(withWriteLock(mm, () => expandDownwards(mm, stack, A + 4 * P, 16 * P))).toBe(Errno.ENOMEM);
    checkMmInvariants([mm]);
  });

  it('updates the tree, the accounting and vm_sequence once, under the mmap lock held for reading', () => {
    const { mm, stack } = stackMm();
    const before = state(mm, stack);
    expect(before.totalVm).toBe(2);
    expect(expand(mm, stack, A + 17 * P + 100)).toBe(0);
    expect(state(mm, stack)).toEqual({
      ...before,
      start: A + 17 * P,
      pgoff: before.pgoff - 3,
      totalVm: 5,
      stackVm: 5,
      seq: before.seq + 2,
    });
    expect(stack.vmEnd).toBe(A + 22 * P);
    expect(mm.vmaLookup(A + 17 * P)).toBe(stack);
    expect(mm.findVma(A)).toBe(stack);
    expect(mm.vmaLookup(A + 16 * P)).toBeNull();
    // vma_start_write() marked the VMA for this mm_lock_seq (the mark lasts until the next write unlock).
    expect(stack.vmLockSeq.value).toBe(mm.mmLockSeq.value);
    checkMmInvariants([mm]);
  });

  it('stores vm_start and then vm_pgoff, one WRITE_ONCE() each, inside the vm_sequence section (torn VMA writes)', () => {
    const { mm, stack } = stackMm();
    const [start, pgoff, seq] = [stack.vmStart, stack.vmPgoff, stack.vmSequence.peek()];
    const seen: RecordedEffect<[number, number, number]>[] = [];
    const at = (): [number, number, number] => [stack.vmStart, stack.vmPgoff, stack.vmSequence.peek() - seq];
    expect(withReadLock(mm, () => recordEffects(expandDownwards(mm, stack, A + 18 * P), at, seen))).toBe(0);
    const stores = seen.filter(
      (e) => e.line === stack.line && e.kind === EffectKind.Write && e.label !== undefined,
    );
    // A lockless reader between the two stores sees the new start with the old offset: only the odd
    // vm_sequence tells it to retry.
    expect(stores.map((e) => [e.label, e.at])).toEqual([
      ['WRITE_ONCE(vm_start)', [start, pgoff, 1]],
      ['WRITE_ONCE(vm_pgoff)', [A + 18 * P, pgoff, 1]],
    ]);
    expect(at()).toEqual([A + 18 * P, pgoff - 2, 2]);
  });

  it('counts a VM_LOCKED stack in locked_vm', () => {
    const { mm, stack } = stackMm();
    stack.vmFlags |= VM_LOCKED;
    expect(expand(mm, stack, A + 19 * P)).toBe(0);
    expect([mm.lockedVm, mm.totalVm]).toEqual([1, 3]);
  });

  it('does nothing for an address already inside the VMA (another thread grew it)', () => {
    const { mm, stack } = stackMm();
    const before = state(mm, stack);
    expect(expand(mm, stack, A + 20 * P)).toBe(0);
    expect(expand(mm, stack, A + 21 * P + 7)).toBe(0);
    expect(state(mm, stack)).toEqual(before);
    expect(stack.anonVma).toBeNull();
  });

  it('refuses an address below mmap_min_addr with EPERM, and allows it at mmap_min_addr', () => {
    const mm = new MmStruct({ stackGuardGap: 0, mmapMinAddr: 0x10000 });
    const stack = map(mm, 0x20000, 1, RW, MAP_GROWSDOWN);
    expect(expand(mm, stack, 0x10000 - 1)).toBe(Errno.EPERM);
    expect(stack.vmStart).toBe(0x20000);
    expect(expand(mm, stack, 0x10000 + 5)).toBe(0);
    expect(stack.vmStart).toBe(0x10000);
  });

  it('refuses to overlap the VMA below or to come within the guard gap of an accessible one', () => {
    const { mm, stack } = stackMm();
    map(mm, A + 10 * P, 2);
    const before = state(mm, stack);
    for (const page of [11, 12, 13, 14, 15]) {
      expect(expand(mm, stack, A + page * P), `page ${page}`).toBe(Errno.ENOMEM);
    }
    expect(state(mm, stack)).toEqual(before);
    expect(expand(mm, stack, A + 16 * P)).toBe(0); // exactly the gap (4 pages) left
    expect(stack.vmStart).toBe(A + 16 * P);
  });

  it('needs no guard gap above an inaccessible (PROT_NONE) VMA or another stack, but never overlaps', () => {
    for (const [prot, extra] of [
      [0, 0],
      [RW, MAP_GROWSDOWN],
    ] as const) {
      const { mm, stack } = stackMm();
      map(mm, A + 10 * P, 2, prot, extra);
      expect(expand(mm, stack, A + 11 * P)).toBe(Errno.ENOMEM);
      expect(expand(mm, stack, A + 12 * P)).toBe(0);
      expect(stack.vmStart).toBe(A + 12 * P);
    }
  });

  it('refuses to grow past vm_pgoff 0', () => {
    const { mm, stack } = stackMm();
    stack.vmPgoff = 3;
    expect(expand(mm, stack, A + 16 * P)).toBe(Errno.ENOMEM);
    expect(stack.vmStart).toBe(A + 20 * P);
    expect(expand(mm, stack, A + 17 * P)).toBe(0);
    expect([stack.vmStart, stack.vmPgoff]).toEqual([A + 17 * P, 0]);
  });

  it('enforces RLIMIT_STACK on the whole size (8 MiB by default) and RLIMIT_AS on the whole mm', () => {
    expect(DEFAULT_RLIMIT_STACK).toBe(8 * 1024 * 1024);
    const { mm, stack } = stackMm();
    expect(expand(mm, stack, A + 15 * P, 6 * P)).toBe(Errno.ENOMEM);
    expect(expand(mm, stack, A + 16 * P, 6 * P)).toBe(0);
    const big = stackMm();
    const top = big.stack.vmEnd;
    expect(expand(big.mm, big.stack, top - DEFAULT_RLIMIT_STACK - P)).toBe(Errno.ENOMEM);
    expect(expand(big.mm, big.stack, top - DEFAULT_RLIMIT_STACK)).toBe(0);
    // RLIMIT_AS: 2 stack pages + 1 other page mapped, a limit of 6 pages.
    const as = stackMm({ rlimitAs: 6 * P });
    map(as.mm, A, 1);
    expect(expand(as.mm, as.stack, A + 16 * P)).toBe(Errno.ENOMEM);
    expect(expand(as.mm, as.stack, A + 17 * P)).toBe(0);
    expect(as.mm.totalVm).toBe(6);
  });

  it('two CPUs growing the same stack under the read lock both succeed and grow it once to the lower address', () => {
    for (const pages of [
      [17, 18],
      [17, 17],
    ] as const) {
      for (const opts of [
        { policy: 'random', runs: 60, seed: 3 },
        { policy: 'pct', runs: 60, seed: 4, depth: 3 },
      ] as const) {
        exploreInTest(
          {
            cpus: 2,
            setup(m: Machine) {
              const { mm, stack } = stackMm();
              const seq0 = runSync(stack.vmSequence.rawReadSeqcount());
              const results: number[] = [];
              for (const cpu of [0, 1]) {
                m.spawn(cpu, `grow${cpu}`, function* () {
                  yield* mm.mmapReadLock();
                  results.push(yield* expandDownwards(mm, stack, A + pages[cpu]! * P));
                  yield* mm.mmapReadUnlock();
                });
              }
              return () => {
                expect(results).toEqual([0, 0]);
                expect(stack.vmStart).toBe(A + 17 * P);
                expect(mm.totalVm).toBe(5);
                expect(mm.stackVm).toBe(5);
                expect(mm.vmaLookup(A + 17 * P)).toBe(stack);
                // One change per expansion that grew the VMA; none for the one that found it grown.
                const grew = pages[0] === pages[1] ? 1 : 2;
                expect(runSync(stack.vmSequence.rawReadSeqcount())).toBeLessThanOrEqual(seq0 + 2 * grew);
                checkMmInvariants([mm]);
              };
            },
          },
          opts,
          `two CPUs growing the same stack to pages ${pages}`,
        );
      }
    }
  });
});
