import { exploreInTest, type Machine, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import {
  type AnonVma,
  anonVmaCompatible,
  anonVmaPrepare,
  findMergeableAnonVma,
  unlinkAnonVmas,
  vmaIsForkChild,
} from './anon-vma.js';
import { MmStruct } from './mm-struct.js';
import { forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import { VmArea, type VmFile } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_EXEC,
  VM_LOCKED,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_READ,
  VM_SOFTDIRTY,
  VM_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x1000_0000;
const RW = PROT_READ | PROT_WRITE;
const FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

function map(mm: MmStruct, addr: number, pages: number, prot = RW): void {
  expect(mmapSync(mm, { addr, len: pages * P, prot, flags: FLAGS })).toEqual({ ok: true, value: addr });
}

function vmaAt(mm: MmStruct, addr: number): VmArea {
  const v = mm.findVma(addr);
  if (v === null || v.vmStart > addr) throw new Error(`no VMA at ${addr.toString(16)}`);
  return v;
}

const prepare = (vma: VmArea): AnonVma => runSync(anonVmaPrepare(vma));

/** The anon_vmas `vma` is linked to, in chain order. */
const chain = (vma: VmArea) => vma.anonVmaChain.map((avc) => avc.anonVma);

/**
 * Three anonymous VMAs [A, A+P), [A+P, A+2P) and [A+2P, A+3P) that may share an anon_vma (the middle one
 * differs only in VM_EXEC, which `anon_vma_compatible()` ignores), none faulted yet.
 */
function threeCompatible(): MmStruct {
  const { mm } = makeSystem();
  map(mm, A, 3);
  expect(mprotectSync(mm, A + P, P, RW | PROT_EXEC)).toEqual({ ok: true, value: 0 });
  expect([...mm.vmas()].length).toBe(3);
  return mm;
}

describe('__anon_vma_prepare', () => {
  it('gives an unfaulted VMA a new anon_vma that is its own root and parent, linked once', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    const vma = vmaAt(mm, A);
    const av = prepare(vma);
    expect(vma.anonVma).toBe(av);
    expect(av.id).toBe(0);
    expect(av.root).toBe(av);
    expect(av.parent).toBe(av);
    expect(av.numActiveVmas).toBe(1);
    expect(av.numChildren).toBe(0);
    expect(chain(vma)).toEqual([av]);
    expect([...av.chains].map((c) => c.vma)).toEqual([vma]);
    expect(av.chains.has(vma.anonVmaChain[0]!)).toBe(true);
    // A second fault finds it prepared: nothing new is made or linked.
    expect(prepare(vma)).toBe(av);
    expect(av.numActiveVmas).toBe(1);
    expect(vma.anonVmaChain.length).toBe(1);
    expect(av.chains.size).toBe(1);
    expect(mm.ids.nextAnonVma()).toBe(1);
  });

  it('takes no lock and looks at no neighbour for a VMA that already has an anon_vma (the fault fast path)', () => {
    const mm = threeCompatible();
    const vma = vmaAt(mm, A + P);
    const av = prepare(vma);
    const code = anonVmaPrepare(vma);
    const r = code.next(undefined);
    expect(r.done).toBe(true);
    expect(r.value).toBe(av);
  });

  it('reuses the anon_vma of a compatible previous VMA, so the two can merge later', () => {
    const mm = threeCompatible();
    const first = prepare(vmaAt(mm, A));
    const second = vmaAt(mm, A + P);
    expect(prepare(second)).toBe(first);
    expect(first.numActiveVmas).toBe(2);
    expect(chain(second)).toEqual([first]);
    expect(first.chains.size).toBe(2);
    // Taking PROT_EXEC away again merges the three back into one.
    expect(mprotectSync(mm, A + P, P, RW)).toEqual({ ok: true, value: 0 });
    expect([...mm.vmas()].length).toBe(1);
  });

  it('reuses the anon_vma of a compatible next VMA', () => {
    const mm = threeCompatible();
    const last = prepare(vmaAt(mm, A + 2 * P));
    expect(prepare(vmaAt(mm, A + P))).toBe(last);
  });

  it("prefers the next VMA's anon_vma to the previous one's", () => {
    const mm = threeCompatible();
    const first = prepare(vmaAt(mm, A));
    const last = prepare(vmaAt(mm, A + 2 * P));
    expect(last).not.toBe(first); // the middle one, between them, had none yet
    expect(prepare(vmaAt(mm, A + P))).toBe(last);
  });

  it('falls back to the previous VMA when the next one is adjacent but not compatible', () => {
    const mm = threeCompatible();
    const first = prepare(vmaAt(mm, A));
    const last = vmaAt(mm, A + 2 * P);
    last.vmFlags |= VM_LOCKED;
    prepare(last);
    expect(prepare(vmaAt(mm, A + P))).toBe(first);
  });

  it('makes a new anon_vma when the neighbours have none, are not adjacent, or are not compatible', () => {
    // Neighbours without an anon_vma.
    const mm = threeCompatible();
    const mid = prepare(vmaAt(mm, A + P));
    expect(mid.id).toBe(0);
    expect(vmaAt(mm, A).anonVma).toBeNull();
    // Neighbours with a hole between them.
    const { mm: holes } = makeSystem();
    map(holes, A, 1);
    map(holes, A + 2 * P, 1);
    map(holes, A + 4 * P, 1);
    const a = prepare(vmaAt(holes, A));
    const c = prepare(vmaAt(holes, A + 4 * P));
    const b = prepare(vmaAt(holes, A + 2 * P));
    expect(new Set([a, b, c]).size).toBe(3);
    // Adjacent neighbours with other flags.
    const inc = threeCompatible();
    for (const addr of [A, A + 2 * P]) {
      const v = vmaAt(inc, addr);
      v.vmFlags |= VM_LOCKED;
      prepare(v);
    }
    const m = prepare(vmaAt(inc, A + P));
    expect(m).not.toBe(vmaAt(inc, A).anonVma);
    expect(m).not.toBe(vmaAt(inc, A + 2 * P).anonVma);
  });

  it("does not reuse a fork child's anon_vma (its VMA is linked to more than one)", () => {
    const mm = threeCompatible();
    touch(mm, A);
    const child = forkSync(mm);
    const cfirst = vmaAt(child, A);
    expect(cfirst.anonVmaChain.length).toBe(2);
    const cmid = prepare(vmaAt(child, A + P));
    expect(cmid).not.toBe(cfirst.anonVma);
    expect(cmid.parent).toBe(cmid);
  });

  it('two CPUs faulting the same new VMA at once agree on one anon_vma', () => {
    for (const opts of [
      { policy: 'random', runs: 60, seed: 5 },
      { policy: 'pct', runs: 60, seed: 6, depth: 2 },
    ] as const) {
      exploreInTest(
        {
          cpus: 2,
          setup(m: Machine) {
            const mm = new MmStruct();
            map(mm, A, 1);
            const vma = vmaAt(mm, A);
            const seen: AnonVma[] = [];
            for (const cpu of [0, 1]) {
              m.spawn(cpu, `fault${cpu}`, function* () {
                yield* mm.mmapReadLock();
                seen.push(yield* anonVmaPrepare(vma));
                yield* mm.mmapReadUnlock();
              });
            }
            return () => {
              expect(seen.length).toBe(2);
              expect(seen[0]).toBe(seen[1]);
              expect(vma.anonVma).toBe(seen[0]);
              expect(vma.anonVmaChain.length).toBe(1);
              expect(seen[0]!.numActiveVmas).toBe(1);
              expect(seen[0]!.chains.size).toBe(1);
            };
          },
        },
        opts,
        'two CPUs faulting the same new VMA at once agree on one anon_vma',
      );
    }
  });
});

describe('anon_vma_compatible', () => {
  const file: VmFile = { name: 'f' } as unknown as VmFile;
  const other: VmFile = { name: 'g' } as unknown as VmFile;
  const F = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_ACCOUNT;
  function pair(bFlags = F, bPgoff = 12, bStart = 12 * P, bFile: VmFile | null = null) {
    const mm = new MmStruct();
    const a = new VmArea(mm, 10 * P, 12 * P, F, 10, null);
    const b = new VmArea(mm, bStart, bStart + P, bFlags, bPgoff, bFile);
    return anonVmaCompatible(a, b);
  }
  it('allows adjacent VMAs of one file with contiguous offsets whose flags differ only in access bits', () => {
    expect(pair()).toBe(true);
    expect(pair(F & ~(VM_READ | VM_WRITE))).toBe(true);
    expect(pair(F | VM_EXEC)).toBe(true);
    expect(pair(F | VM_SOFTDIRTY)).toBe(true);
  });
  it('refuses a hole, another file, other flags, or offsets that are not contiguous', () => {
    expect(pair(F, 13, 13 * P)).toBe(false); // a page between them
    expect(pair(F, 12, 12 * P, file)).toBe(false);
    expect(pair(F | VM_LOCKED)).toBe(false);
    expect(pair(F & ~VM_ACCOUNT)).toBe(false);
    expect(pair(F & ~VM_MAYWRITE)).toBe(false);
    expect(pair(F, 13)).toBe(false);
    expect(pair(F, 11)).toBe(false);
    const mm = new MmStruct();
    const a = new VmArea(mm, 10 * P, 12 * P, F, 0, file);
    expect(anonVmaCompatible(a, new VmArea(mm, 12 * P, 13 * P, F, 2, file))).toBe(true);
    expect(anonVmaCompatible(a, new VmArea(mm, 12 * P, 13 * P, F, 2, other))).toBe(false);
  });
  it('findMergeableAnonVma sees no neighbour on an empty side', () => {
    const mm = threeCompatible();
    // The lowest VMA has no previous one; its next one has no anon_vma.
    expect(findMergeableAnonVma(vmaAt(mm, A))).toBeNull();
    const last = prepare(vmaAt(mm, A));
    expect(findMergeableAnonVma(vmaAt(mm, A + P))).toBe(last);
    // The highest VMA has no next one.
    expect(findMergeableAnonVma(vmaAt(mm, A + 2 * P))).toBeNull();
  });
});

describe('anon_vma_clone (split of a faulted VMA)', () => {
  it('links both halves to the anon_vma and counts both as active', () => {
    const { mm } = makeSystem();
    map(mm, A, 3);
    touch(mm, A);
    const av = vmaAt(mm, A).anonVma!;
    expect(mprotectSync(mm, A + P, P, PROT_READ)).toEqual({ ok: true, value: 0 });
    const vmas = [...mm.vmas()];
    expect(vmas.length).toBe(3);
    for (const v of vmas) {
      expect(v.anonVma).toBe(av);
      expect(chain(v)).toEqual([av]);
    }
    expect(av.numActiveVmas).toBe(3);
    expect(av.chains.size).toBe(3);
  });
});

describe('anon_vma_fork', () => {
  it("links the child's VMA to its own anon_vma first, whose parent and root are the parent VMA's", () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A);
    const pav = vmaAt(mm, A).anonVma!;
    const child = forkSync(mm);
    const cv = vmaAt(child, A);
    const cav = cv.anonVma!;
    expect(cav).not.toBe(pav);
    expect(cav.parent).toBe(pav);
    expect(cav.root).toBe(pav);
    expect(chain(cv)).toEqual([cav, pav]);
    expect(cav.chains.size).toBe(1);
    expect([...cav.chains][0]!.vma).toBe(cv);
    expect(cav.numActiveVmas).toBe(1);
    expect(pav.numActiveVmas).toBe(1);
    expect(pav.numChildren).toBe(1);
    expect(pav.chains.size).toBe(2);
    expect(vmaIsForkChild(cv)).toBe(true);
    expect(vmaIsForkChild(vmaAt(mm, A))).toBe(false);
    // A grandchild keeps the first anon_vma as its root.
    const grand = forkSync(child);
    const gav = vmaAt(grand, A).anonVma!;
    expect(gav.parent).toBe(cav);
    expect(gav.root).toBe(pav);
    expect(chain(vmaAt(grand, A))).toEqual([gav, cav, pav]);
  });

  it('gives a child VMA whose parent VMA has no anon_vma none either', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    const child = forkSync(mm);
    const cv = vmaAt(child, A);
    expect(cv.anonVma).toBeNull();
    expect(cv.anonVmaChain).toEqual([]);
    expect(vmaIsForkChild(cv)).toBe(false);
    expect(vmaIsForkChild(null)).toBe(false);
  });
});

describe('unlink_anon_vmas', () => {
  it('frees an anon_vma when its last VMA goes, and a parent only after its last child', () => {
    const { mm } = makeSystem();
    map(mm, A, 2);
    touch(mm, A);
    const pav = vmaAt(mm, A).anonVma!;
    const child = forkSync(mm);
    const cav = vmaAt(child, A).anonVma!;
    // The parent unmaps: its anon_vma is still linked to the child's VMA.
    expect(munmapSync(mm, A, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(pav.numActiveVmas).toBe(0);
    expect(pav.chains.size).toBe(1);
    expect(pav.freed).toBe(false);
    // The child unmaps: both go.
    expect(munmapSync(child, A, 2 * P)).toEqual({ ok: true, value: 0 });
    expect(cav.freed).toBe(true);
    expect(pav.freed).toBe(true);
    expect(pav.numChildren).toBe(0);
  });

  it('keeps a parent anon_vma with no VMA while a child anon_vma lives, and frees it with the child', () => {
    const { mm } = makeSystem();
    map(mm, A, 1);
    touch(mm, A);
    const pav = vmaAt(mm, A).anonVma!;
    const child = forkSync(mm);
    const cv = vmaAt(child, A);
    const cav = cv.anonVma!;
    // The child's VMA leaves the parent's anon_vma first (as if it had been unlinked from it alone).
    pav.chains.delete(cv.anonVmaChain[1]!);
    cv.anonVmaChain.pop();
    expect(munmapSync(mm, A, P)).toEqual({ ok: true, value: 0 });
    expect(pav.chains.size).toBe(0);
    expect(pav.numChildren).toBe(1);
    expect(pav.freed).toBe(false);
    unlinkAnonVmas(cv);
    expect(cv.anonVmaChain).toEqual([]);
    expect(cav.numActiveVmas).toBe(0);
    expect(cav.freed).toBe(true);
    expect(pav.numChildren).toBe(0);
    expect(pav.freed).toBe(true);
  });

  it("keeps the parent's anon_vma when a fork child exits while the parent still maps it", () => {
    const { mm } = makeSystem();
    map(mm, A, 1);
    touch(mm, A);
    const pav = vmaAt(mm, A).anonVma!;
    const child = forkSync(mm);
    const cav = vmaAt(child, A).anonVma!;
    expect(munmapSync(child, A, P)).toEqual({ ok: true, value: 0 });
    expect(cav.freed).toBe(true);
    expect(pav.numChildren).toBe(0);
    expect(pav.chains.size).toBe(1);
    expect(pav.freed).toBe(false);
    expect(munmapSync(mm, A, P)).toEqual({ ok: true, value: 0 });
    expect(pav.freed).toBe(true);
  });

  it('keeps an anon_vma other VMAs still use', () => {
    const { mm } = makeSystem();
    map(mm, A, 3);
    touch(mm, A);
    const av = vmaAt(mm, A).anonVma!;
    expect(munmapSync(mm, A + P, P)).toEqual({ ok: true, value: 0 });
    expect(av.freed).toBe(false);
    expect(av.numActiveVmas).toBe(2);
    expect(av.chains.size).toBe(2);
    expect(munmapSync(mm, A, 3 * P)).toEqual({ ok: true, value: 0 });
    expect(av.freed).toBe(true);
    expect(av.numActiveVmas).toBe(0);
  });
});
