import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { MmStruct } from './mm-struct.js';
import {
  OvercommitConfigError,
  type OvercommitMode,
  type OvercommitOptions,
  OvercommitPolicy,
} from './overcommit.js';
import { procMaps } from './proc-maps.js';
import { mmapSync, mprotectSync, mremapSync, munmapSync } from './sync-api.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x100000000000;
const RAM = 1024; // pages: a 4 MiB machine
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const SHARED = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
const ENOMEM = { ok: false, errno: Errno.ENOMEM };

/** A fresh mm under `mode`; `never` sees the mm's own committed pages as vm_committed_as. */
function mmWith(mode: OvercommitMode = 'guess'): MmStruct {
  const holder: { mm: MmStruct | null } = { mm: null };
  const overcommit = new OvercommitPolicy({
    mode,
    totalRamPages: RAM,
    committedPages: () => holder.mm?.committed ?? 0,
  });
  holder.mm = new MmStruct({ overcommit });
  return holder.mm;
}

/** The state a failed call must leave alone. */
const state = (mm: MmStruct) => ({ maps: procMaps(mm), committed: mm.committed, totalVm: mm.totalVm });

describe('overcommit heuristic (OVERCOMMIT_GUESS, the default): __vm_enough_memory', () => {
  it('refuses a private writable mapping larger than RAM + swap with ENOMEM; RAM-sized is fine', () => {
    const mm = mmWith();
    expect(mmapSync(mm, { addr: A, len: (RAM + 1) * P, prot: RW, flags: PRIV })).toEqual(ENOMEM);
    expect(state(mm)).toEqual({ maps: '', committed: 0, totalVm: 0 });
    expect(mmapSync(mm, { addr: A, len: RAM * P, prot: RW, flags: PRIV })).toEqual({ ok: true, value: A });
    expect(mm.committed).toBe(RAM);
    // GUESS looks at one request at a time: another RAM-sized mapping is allowed too.
    expect(mmapSync(mm, { addr: A + 2 * RAM * P, len: RAM * P, prot: RW, flags: PRIV }).ok).toBe(true);
  });

  it('does not charge read-only private memory or MAP_NORESERVE, and charges shared anonymous memory even read-only', () => {
    const mm = mmWith();
    const big = 100 * RAM * P;
    expect(mmapSync(mm, { addr: A, len: big, prot: PROT_READ, flags: PRIV }).ok).toBe(true);
    expect(mmapSync(mm, { addr: A + big, len: big, prot: RW, flags: PRIV | MAP_NORESERVE }).ok).toBe(true);
    expect(mm.committed).toBe(0);
    const before = state(mm);
    expect(mmapSync(mm, { addr: A + 2 * big, len: big, prot: PROT_READ, flags: SHARED })).toEqual(ENOMEM);
    expect(mmapSync(mm, { addr: A + 2 * big, len: big, prot: RW, flags: SHARED | MAP_NORESERVE }).ok).toBe(
      true,
    );
    expect(procMaps(mm)).not.toBe(before.maps);
  });

  it('refuses mprotect making a huge private mapping writable (mprotect_fixup charges) and changes nothing', () => {
    const mm = mmWith();
    const len = (RAM + 1) * P;
    expect(mmapSync(mm, { addr: A, len, prot: PROT_READ, flags: PRIV }).ok).toBe(true);
    const before = state(mm);
    expect(mprotectSync(mm, A, len, RW)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    // A part that fits is charged.
    expect(mprotectSync(mm, A, RAM * P, RW)).toEqual({ ok: true, value: 0 });
    expect(mm.committed).toBe(RAM);
  });

  it('charges mremap growth: in place and when moving; a refused grow changes nothing', () => {
    const mm = mmWith();
    expect(mmapSync(mm, { addr: A, len: P, prot: RW, flags: PRIV }).ok).toBe(true);
    const before = state(mm);
    // The growth (RAM + 1 pages) alone exceeds RAM.
    expect(mremapSync(mm, A, P, (RAM + 2) * P, 0)).toEqual(ENOMEM);
    expect(mremapSync(mm, A, P, (RAM + 2) * P, MREMAP_MAYMOVE)).toEqual(ENOMEM);
    expect(state(mm)).toEqual(before);
    expect(mremapSync(mm, A, P, (RAM + 1) * P, 0)).toEqual({ ok: true, value: A });
    expect(mm.committed).toBe(RAM + 1);
  });

  it('MAP_FIXED over accounted memory is charged only the pages it adds (nr_accounted)', () => {
    const mm = mmWith();
    expect(mmapSync(mm, { addr: A, len: RAM * P, prot: RW, flags: PRIV }).ok).toBe(true);
    // RAM + 10 pages over the RAM pages already charged: 10 new pages.
    expect(mmapSync(mm, { addr: A, len: (RAM + 10) * P, prot: RW, flags: PRIV }).ok).toBe(true);
    expect(mm.committed).toBe(RAM + 10);
  });
});

describe('OVERCOMMIT_NEVER and OVERCOMMIT_ALWAYS', () => {
  it('never: the commit limit is 50% of RAM (+ swap) less the admin reserve and the user reserve share', () => {
    const policy = new OvercommitPolicy({ mode: 'never', totalRamPages: RAM, committedPages: () => 0 });
    expect(policy.commitLimit()).toBe(RAM / 2);
    const mm = mmWith('never');
    // admin reserve: min(RAM/32, 8 MiB) = 32 pages; user reserve share: min(total_vm / 32, ...).
    let mapped = 0;
    // Bounded, so a policy that never refuses fails the test instead of looping.
    while (mapped < 4 * RAM && mmapSync(mm, { addr: A + mapped * P, len: 16 * P, prot: RW, flags: PRIV }).ok)
      mapped += 16;
    expect(mapped).toBeGreaterThan(RAM / 2 - 32 - 32);
    expect(mapped).toBeLessThan(RAM / 2 - 32);
    // MAP_NORESERVE is not honoured under never.
    expect(mmapSync(mm, { addr: A + RAM * P, len: 16 * P, prot: RW, flags: PRIV | MAP_NORESERVE })).toEqual(
      ENOMEM,
    );
    // Unmapping gives the commit back.
    expect(munmapSync(mm, A, 16 * P).ok).toBe(true);
    expect(mmapSync(mm, { addr: A, len: 16 * P, prot: RW, flags: PRIV }).ok).toBe(true);
  });

  it('always: nothing is refused', () => {
    const mm = mmWith('always');
    expect(mmapSync(mm, { addr: A, len: 1000 * RAM * P, prot: RW, flags: PRIV }).ok).toBe(true);
    expect(mmapSync(mm, { addr: A + 1000 * RAM * P, len: 1000 * RAM * P, prot: RW, flags: SHARED }).ok).toBe(
      true,
    );
  });

  it('an mm without a policy (outside a booted system) is never refused', () => {
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: 1000 * RAM * P, prot: RW, flags: PRIV }).ok).toBe(true);
  });
});

describe('OvercommitPolicy: __vm_enough_memory() and vm_commit_limit() in numbers', () => {
  it('defaults to guess, with the sysctl defaults of init_admin_reserve() and init_user_reserve()', () => {
    const small = new OvercommitPolicy({ totalRamPages: RAM });
    expect(small.mode).toBe('guess');
    expect(small.totalSwapPages).toBe(0);
    expect(small.overcommitRatio).toBe(50);
    expect(small.overcommitKbytes).toBe(0);
    // 4 MiB of RAM: both reserves are 1/32 of it, 128 KiB.
    expect(small.adminReserveKbytes).toBe(128);
    expect(small.userReserveKbytes).toBe(128);
    expect(small.committed()).toBe(0);
    // 8 GiB: the admin reserve stops at 8 MiB, the user reserve at 128 MiB (1/32 would be 256 MiB).
    const big = new OvercommitPolicy({ totalRamPages: 2 * 1024 * 1024 });
    expect(big.adminReserveKbytes).toBe(8192);
    expect(big.userReserveKbytes).toBe(131072);
  });

  it.each([
    'totalRamPages',
    'totalSwapPages',
    'overcommitRatio',
    'overcommitKbytes',
    'adminReserveKbytes',
    'userReserveKbytes',
  ] as const)('refuses a negative or fractional %s, naming it', (name) => {
    for (const bad of [-1, 1.5, Number.POSITIVE_INFINITY]) {
      const build = () => new OvercommitPolicy({ totalRamPages: RAM, [name]: bad });
      expect(build).toThrow(OvercommitConfigError);
      expect(build).toThrow(`${name} must be a whole number of at least 0, got ${bad}`);
    }
    expect(new OvercommitPolicy({ totalRamPages: RAM, [name]: 0 })[name]).toBe(0);
  });

  it('refuses an unknown mode, and never without vm_committed_as to compare', () => {
    const mode = 'sometimes' as OvercommitMode;
    expect(() => new OvercommitPolicy({ mode, totalRamPages: RAM })).toThrow(
      'the overcommit mode must be guess, always or never, got sometimes',
    );
    let err: unknown = null;
    try {
      new OvercommitPolicy({ mode: 'never', totalRamPages: RAM });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OvercommitConfigError);
    expect((err as Error).name).toBe('OvercommitConfigError');
    expect((err as Error).message).toMatch(/never mode needs committedPages/);
    // guess and always do not look at vm_committed_as.
    expect(new OvercommitPolicy({ mode: 'always', totalRamPages: RAM }).vmEnoughMemory(null, 10 * RAM)).toBe(
      true,
    );
  });

  it('vm_commit_limit(): swap plus overcommit_ratio% of RAM, or overcommit_kbytes when it is set', () => {
    const c = () => 0;
    expect(
      new OvercommitPolicy({ mode: 'never', totalRamPages: 1000, committedPages: c }).commitLimit(),
    ).toBe(500);
    const ratio: OvercommitOptions = {
      mode: 'never',
      totalRamPages: 1000,
      totalSwapPages: 7,
      overcommitRatio: 33,
      committedPages: c,
    };
    expect(new OvercommitPolicy(ratio).commitLimit()).toBe(330 + 7);
    // 8 MiB of overcommit_kbytes is 2048 pages, whatever the ratio says.
    expect(new OvercommitPolicy({ ...ratio, overcommitKbytes: 8192 }).commitLimit()).toBe(2048 + 7);
  });

  it('guess refuses one request larger than RAM plus swap, whatever is committed', () => {
    const p = new OvercommitPolicy({
      totalRamPages: RAM,
      totalSwapPages: 512,
      committedPages: () => 10 * RAM,
    });
    expect(p.vmEnoughMemory(null, RAM + 512)).toBe(true);
    expect(p.vmEnoughMemory(null, RAM + 513)).toBe(false);
  });

  it('never: committed + pages must stay below the limit less the admin reserve and the user reserve share', () => {
    let committed = 0;
    const p = new OvercommitPolicy({ mode: 'never', totalRamPages: RAM, committedPages: () => committed });
    // limit 512 pages, admin reserve 128 KiB = 32 pages: 480 allowed without an mm (strictly below).
    expect(p.vmEnoughMemory(null, 479)).toBe(true);
    expect(p.vmEnoughMemory(null, 480)).toBe(false);
    committed = 100;
    expect(p.vmEnoughMemory(null, 379)).toBe(true);
    expect(p.vmEnoughMemory(null, 380)).toBe(false);
    committed = 0;
    // A process of 320 pages (read-only, so nothing committed) keeps total_vm / 32 = 10 pages back.
    const mm = new MmStruct();
    expect(mmapSync(mm, { addr: A, len: 320 * P, prot: PROT_READ, flags: PRIV }).ok).toBe(true);
    expect(mm.totalVm).toBe(320);
    expect(p.vmEnoughMemory(mm, 469)).toBe(true);
    expect(p.vmEnoughMemory(mm, 470)).toBe(false);
    // A process of 4096 pages: total_vm / 32 = 128, but the user reserve (128 KiB = 32 pages) caps it.
    expect(mmapSync(mm, { addr: A + 320 * P, len: (4096 - 320) * P, prot: PROT_READ, flags: PRIV }).ok).toBe(
      true,
    );
    expect(p.vmEnoughMemory(mm, 447)).toBe(true);
    expect(p.vmEnoughMemory(mm, 448)).toBe(false);
  });
});
