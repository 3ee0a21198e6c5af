import { describe, expect, it } from 'vitest';
import { Errno } from './errno.js';
import { MmStruct } from './mm-struct.js';
import { type OvercommitMode, OvercommitPolicy } from './overcommit.js';
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
