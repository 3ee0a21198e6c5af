import { describe, expect, it } from 'vitest';
import { Coherence } from './coherence.js';
import { type CostModel, makeCostModel } from './cost-model.js';
import { EffectKind, type MemoryEffect } from './effects.js';
import { MemoryLine } from './memory-line.js';
import { Prng } from './prng.js';

// Distinct latencies, so that each charge can only come from one rule.
const latencies = {
  l1Hit: 1,
  dram: 85,
  llcHit: 20,
  lineTransfer: 60,
  crossSocketTransfer: 130,
  atomicExtra: 5,
};
const cost: CostModel = makeCostModel(8, latencies);
const twoSockets: CostModel = makeCostModel(8, latencies, 2); // CPUs 0-3 and 4-7

let epoch = 1_000;
function coherence(model = cost, cpus = 8, jitter: Prng | null = null): Coherence {
  return new Coherence(model, cpus, ++epoch, jitter);
}
const read = (line: MemoryLine): MemoryEffect => ({ kind: EffectKind.Read, line });
const write = (line: MemoryLine): MemoryEffect => ({ kind: EffectKind.Write, line });
const rmw = (line: MemoryLine): MemoryEffect => ({ kind: EffectKind.Rmw, line });

describe('Coherence: what each access costs and what state it leaves', () => {
  it('a first read comes from DRAM and leaves the line exclusive to the reader; the reader then hits', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    expect(c.access(2, 1000, read(l))).toBe(1085);
    expect(l.owner).toBe(2);
    expect(l.dirty).toBe(false);
    expect(c.access(2, 2000, read(l))).toBe(2001);
    expect(c.readHits(2, l)).toBe(true);
    expect(c.readHits(3, l)).toBe(false);
    expect(l.version).toBe(0);
  });

  it('reading a line another CPU holds clean costs an LLC hit and makes both sharers', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    c.access(0, 0, read(l));
    expect(c.access(1, 500, read(l))).toBe(520);
    expect(l.owner).toBe(-1);
    expect(l.dirty).toBe(false);
    expect(l.sharerCount).toBe(2);
    expect(c.readHits(0, l)).toBe(true);
    expect(c.readHits(1, l)).toBe(true);
    expect(c.readHits(2, l)).toBe(false);
    // sharers hit
    expect(c.access(0, 600, read(l))).toBe(601);
    expect(c.access(1, 600, read(l))).toBe(601);
    // a third CPU joins the sharers at LLC cost
    expect(c.access(2, 700, read(l))).toBe(720);
    expect(l.sharerCount).toBe(3);
    expect(c.readHits(2, l)).toBe(true);
  });

  it('reading a line another CPU modified costs a transfer, more across sockets, and cleans it', () => {
    const c = coherence(twoSockets);
    const l = new MemoryLine('x');
    c.access(1, 0, write(l));
    expect(l.dirty).toBe(true);
    expect(c.access(2, 1000, read(l))).toBe(1060); // same socket
    expect(l.owner).toBe(-1);
    expect(l.dirty).toBe(false);
    expect(l.sharerCount).toBe(2);
    const m = new MemoryLine('y');
    c.access(1, 0, write(m));
    expect(c.access(6, 1000, read(m))).toBe(1130); // other socket
    const n = new MemoryLine('z');
    c.access(6, 0, write(n));
    expect(c.access(3, 1000, read(n))).toBe(1130); // and the other way round
  });

  it('a store or RMW by the owner costs an L1 hit (plus the atomic extra) and bumps the version', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    c.access(3, 0, read(l)); // exclusive, clean
    expect(c.access(3, 100, write(l))).toBe(101);
    expect(l.dirty).toBe(true);
    expect(l.version).toBe(1);
    expect(c.access(3, 200, rmw(l))).toBe(206);
    expect(l.version).toBe(2);
    expect(l.owner).toBe(3);
  });

  it('a store to an untouched line comes from DRAM; an RMW adds the atomic extra', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    expect(c.access(0, 10, write(l))).toBe(95);
    expect(l.owner).toBe(0);
    expect(l.dirty).toBe(true);
    const m = new MemoryLine('y');
    expect(c.access(0, 10, rmw(m))).toBe(100);
  });

  it('a store to a line another CPU owns takes it over with a transfer', () => {
    const c = coherence(twoSockets);
    const l = new MemoryLine('x');
    c.access(0, 0, read(l)); // exclusive on CPU 0
    expect(c.access(1, 1000, write(l))).toBe(1060);
    expect(l.owner).toBe(1);
    expect(l.dirty).toBe(true);
    expect(c.access(5, 2000, rmw(l))).toBe(2135); // across sockets, plus the atomic extra
    expect(l.owner).toBe(5);
    expect(c.readHits(1, l)).toBe(false);
  });

  it('a store to a shared line invalidates every copy at the cost of a transfer, more if a copy is across sockets', () => {
    const c = coherence(twoSockets);
    const l = new MemoryLine('x');
    c.access(0, 0, read(l));
    c.access(1, 0, read(l)); // shared by 0 and 1
    expect(c.access(1, 1000, write(l))).toBe(1060); // invalidates CPU 0 on the same socket
    expect(l.sharerCount).toBe(0);
    expect(l.owner).toBe(1);
    expect(c.readHits(0, l)).toBe(false);
    expect(c.readHits(1, l)).toBe(true);

    const m = new MemoryLine('y');
    c.access(0, 0, read(m));
    c.access(5, 0, read(m)); // shared across sockets
    expect(c.access(1, 1000, write(m))).toBe(1130);
    expect(c.readHits(5, m)).toBe(false);

    const o = new MemoryLine('z');
    c.access(4, 0, read(o));
    c.access(5, 0, read(o)); // shared on socket 1 only
    expect(c.access(6, 1000, write(o))).toBe(1060);
    expect(c.access(2, 2000, read(o))).toBe(2130); // then CPU 2 reads CPU 6's modified copy

    const q = new MemoryLine('v');
    c.access(7, 0, read(q));
    c.access(6, 0, read(q));
    c.access(7, 100, write(q));
    c.access(6, 200, read(q)); // 6 and 7 share, clean
    expect(q.sharerCount).toBe(2);
    expect(c.access(6, 300, write(q))).toBe(360); // 7 is on the same socket
  });

  it('serialises the transfers of one line: a second transfer starts when the first ends', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    c.access(0, 0, write(l));
    expect(c.access(1, 1000, rmw(l))).toBe(1065); // transfer until 1060, plus the atomic extra
    expect(l.busyUntil).toBe(1060);
    expect(c.access(2, 1000, rmw(l))).toBe(1125); // waits for the first: 1060 + 60 + 5
    expect(l.busyUntil).toBe(1120);
    expect(c.access(3, 1000, read(l))).toBe(1180); // a read transfer waits too
    expect(l.busyUntil).toBe(1180);
    expect(c.access(4, 5000, write(l))).toBe(5060); // late enough: no wait
    expect(l.busyUntil).toBe(5060);
    // a transfer starting exactly when the line frees does not wait
    expect(c.access(5, 5060, read(l))).toBe(5120);
  });

  it('gives each line an id and a clean state when this machine first touches it', () => {
    const c = coherence();
    const a = new MemoryLine('a');
    const b = new MemoryLine('b');
    c.access(0, 0, write(a));
    c.access(0, 0, read(b));
    expect([a.id, b.id]).toEqual([0, 1]);
    c.access(1, 0, read(a));
    expect(a.id).toBe(0);
    expect(c.readHits(0, a)).toBe(true);
    // the next machine sees the lines fresh: no owner, sharers or busy time carried over
    const d = coherence();
    expect(d.readHits(0, a)).toBe(false);
    expect(d.readHits(1, a)).toBe(false);
    expect(d.access(1, 0, read(b))).toBe(85);
    expect(b.id).toBe(0);
    expect(b.owner).toBe(1);
    expect(b.busyUntil).toBe(0);
    expect(d.access(0, 0, read(a))).toBe(85);
    expect(a.id).toBe(1);
    expect(a.sharerCount).toBe(0);
    expect(a.sharers).toBe(null);
    expect(a.dirty).toBe(false);
    expect(a.version).toBe(1); // the version counts stores by any machine
    d.adopt(a);
    expect(a.owner).toBe(0);
  });

  it('adopting a line clears its state without touching it: nobody holds it yet', () => {
    const c = coherence();
    const l = new MemoryLine('x');
    coherence().access(3, 0, write(l)); // state left by another machine
    expect([l.owner, l.dirty, l.busyUntil]).toEqual([3, true, 85]);
    c.adopt(l);
    expect([l.id, l.owner, l.dirty, l.sharers, l.sharerCount, l.busyUntil]).toEqual([
      0,
      -1,
      false,
      null,
      0,
      0,
    ]);
    for (let cpu = 0; cpu < 8; cpu++) expect(c.readHits(cpu, l)).toBe(false);
    expect(c.access(3, 0, read(l))).toBe(85); // a miss, from DRAM
  });

  it('tracks sharers beyond the first 32 CPUs', () => {
    const big = makeCostModel(70, latencies, 2); // CPUs 0-34 and 35-69
    const c = coherence(big, 70);
    const l = new MemoryLine('x');
    c.access(33, 0, read(l));
    c.access(64, 0, read(l));
    expect(l.sharerCount).toBe(2);
    expect(c.readHits(33, l)).toBe(true);
    expect(c.readHits(64, l)).toBe(true);
    expect(c.readHits(1, l)).toBe(false);
    expect(c.readHits(32, l)).toBe(false);
    expect(c.access(64, 100, read(l))).toBe(101);
    expect(c.access(1, 100, read(l))).toBe(120);
    expect(c.access(34, 200, write(l))).toBe(330); // CPU 64 is on the other socket
    const m = new MemoryLine('y');
    c.access(40, 0, read(m));
    c.access(69, 0, read(m));
    expect(c.access(36, 100, write(m))).toBe(160); // every sharer on its socket
  });

  it('with a seeded jitter, adds 0 to 1/8 of each latency beyond an L1 hit, drawn in access order', () => {
    const c = coherence(cost, 8, new Prng(42));
    const p = new Prng(42); // the same draws, in the same order
    const l = new MemoryLine('x');
    const m = new MemoryLine('y');
    expect(c.access(0, 0, read(l))).toBe(85 + p.below(11)); // DRAM
    expect(c.access(0, 100, read(l))).toBe(101); // L1 hits draw nothing
    expect(c.access(0, 100, write(l))).toBe(101);
    expect(c.access(1, 1000, read(l))).toBe(1060 + p.below(8)); // transfer of a modified line
    expect(c.access(2, 2000, read(l))).toBe(2020 + p.below(3)); // LLC
    expect(c.access(3, 3000, write(l))).toBe(3060 + p.below(8)); // invalidation
    expect(c.access(3, 4000, rmw(m))).toBe(4085 + p.below(11) + 5); // DRAM store; the extra is not jittered
    // the jitter differs from the plain latencies for this seed (the test would mean nothing otherwise)
    const q = new Prng(42);
    expect([q.below(11), q.below(8), q.below(3), q.below(8), q.below(11)]).not.toEqual([0, 0, 0, 0, 0]);
  });

  it('without jitter the latencies are exact at every seed-0 access', () => {
    const c = coherence(cost, 8, null);
    const l = new MemoryLine('x');
    expect(c.access(0, 0, rmw(l))).toBe(90);
    expect(c.access(1, 0, rmw(l))).toBe(150); // waits for the DRAM fill to 85, then 60 + 5
  });
});
