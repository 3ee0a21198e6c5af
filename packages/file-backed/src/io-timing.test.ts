import { delay, type Kernel, Machine, now, self, timed } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { BlockDevice } from './block-device.js';
import { BASE, makeMachineFixture, P } from './test-support/machine-fixture.js';

describe('the block device and the time of a fault (timed policy)', () => {
  it('a major fault takes the device latency; the minor faults after it do not', () => {
    const fx = makeMachineFixture({ device: { latencyNs: 80_000, readAheadKb: 128 } });
    const times: { kind: string; ns: number }[] = [];
    fx.m.spawn(0, 'toucher', function* (): Kernel<void> {
      times.push(yield* fx.fault(BASE));
      times.push(yield* fx.fault(BASE + 16 * P));
    });
    expect(fx.m.run().failure).toBeNull();
    expect(times.map((t) => t.kind)).toEqual(['handled', 'handled']);
    expect([fx.task.minflt, fx.task.majflt]).toEqual([1, 1]);
    const leaf = fx.mm.pgd.lookup(BASE + 17 * P).at(-1);
    expect(leaf?.level === 1 && (leaf.entry & 1n) === 1n).toBe(true); // mapped by 16's fault-around
    const [major, minor] = times;
    expect(major.ns).toBeGreaterThanOrEqual(80_000);
    expect(minor.ns).toBeLessThan(major.ns / 10);
    expect(fx.sb.device.stats.reads).toBe(1);
    expect(fx.sb.device.stats.pagesRead).toBe(32); // ra_pages = 128 KiB / 4 KiB
  });

  it('the completion interrupt runs on the submitting CPU, in interrupt context, after the latency', () => {
    const m = new Machine({ cpus: 3, policy: timed() });
    const dev = new BlockDevice({ latencyNs: 50_000, perPageNs: 0 });
    const seen: { cpu: number; inIrq: boolean; at: number }[] = [];
    let submittedAt = 0;
    m.spawn(2, 'submitter', function* (): Kernel<void> {
      submittedAt = yield* now();
      yield* dev.submit('read', 1, function* () {
        const s = yield* self();
        seen.push({ cpu: s.cpu, inIrq: s.inIrq, at: yield* now() });
      });
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toHaveLength(1);
    expect(seen[0].cpu).toBe(2);
    expect(seen[0].inIrq).toBe(true);
    expect(seen[0].at - submittedAt).toBeGreaterThanOrEqual(50_000);
    expect(dev.inflight).toBe(0);
  });

  it('waitIdle() returns once every request in flight has completed (what the replay does after each op)', () => {
    const m = new Machine({ cpus: 1, policy: timed() });
    const dev = new BlockDevice({ latencyNs: 30_000, perPageNs: 0 });
    const completed: number[] = [];
    let inflightAfterWait = -1;
    let completedAfterWait = -1;
    m.spawn(0, 'replay', function* (): Kernel<void> {
      yield* dev.waitIdle(); // nothing in flight: returns at once
      for (let i = 0; i < 2; i++) {
        yield* dev.submit('read', 1, function* () {
          completed.push(i);
        });
      }
      yield* dev.waitIdle();
      inflightAfterWait = dev.inflight;
      completedAfterWait = completed.length;
    });
    expect(m.run().failure).toBeNull();
    expect(inflightAfterWait).toBe(0);
    expect(completedAfterWait).toBe(2);
  });

  it('with queue depth 1 a second request waits for the first to complete', () => {
    const m = new Machine({ cpus: 2, policy: timed() });
    const dev = new BlockDevice({ latencyNs: 10_000, perPageNs: 0, queueDepth: 1 });
    const done: number[] = [];
    for (const cpu of [0, 1]) {
      m.spawn(cpu, `io${cpu}`, function* (): Kernel<void> {
        yield* dev.submit('read', 1, function* () {
          done.push(yield* now());
        });
      });
    }
    expect(m.run().failure).toBeNull();
    expect(dev.stats.tagWaits).toBe(1);
    done.sort((a, b) => a - b);
    expect(done[1] - done[0]).toBeGreaterThanOrEqual(10_000);
  });

  it('a major fault drops mmap_lock while it waits for the read (VM_FAULT_RETRY), so a writer gets in', () => {
    const writerWait = (drop: boolean) => {
      const fx = makeMachineFixture({ device: { latencyNs: 200_000 }, dropMmapLockForIo: drop });
      let waited = -1;
      fx.m.spawn(0, 'faulter', function* (): Kernel<void> {
        yield* fx.fault(BASE);
      });
      fx.m.spawn(1, 'mmap-writer', function* (): Kernel<void> {
        yield* delay(20_000);
        const t0 = yield* now();
        yield* fx.mm.mmapWriteLock();
        waited = (yield* now()) - t0;
        yield* fx.mm.mmapWriteUnlock();
      });
      expect(fx.m.run().failure).toBeNull();
      return { waited, retries: fx.env.vmstat.retries, majflt: fx.task.majflt };
    };
    const dropped = writerWait(true);
    const held = writerWait(false);
    expect(dropped.retries).toBe(1);
    expect(held.retries).toBe(0);
    expect([dropped.majflt, held.majflt]).toEqual([1, 1]);
    expect(dropped.waited).toBeLessThan(20_000);
    expect(held.waited).toBeGreaterThan(150_000);
  });
});
