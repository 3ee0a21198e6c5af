// Cost of file-backed faults (not a test): prints the figures in the README.
//   pnpm run bench        (tsx --conditions=@spf/source bench/file-fault.ts)
//
// 1. Host time per minor fault on a cached file against an anonymous fault, measured in the same run
//    (runSync, no machine): the file fault with fault-around on (64 KiB: one fault maps 16 pages) and off
//    (fault_around_bytes 4096: one page per fault, the same work as an anonymous fault).
// 2. Simulated cost under the timed policy with an 80 us device (the cost model's NVMe diskRead): a minor
//    fault, a major fault, and how long a major fault holds mmap_lock with the retry (Linux:
//    maybe_unlock_mmap_for_io) and without it; and how long a concurrent mmap_lock writer waits.
import { doUserAddrFault, type FaultEnv, makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { defaultCostModel, delay, type Kernel, now, runSync } from '@spf/machine';
import { Mmu, PF_USER, PF_WRITE, PhysicalMemory } from '@spf/pagetable';
import {
  createRcu,
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MmStruct,
  mmapSync,
  munmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { fileFsync, fileWrite, filemapVmOps, SuperBlock } from '../src/index.js';
import { BASE, makeMachineFixture, P } from '../src/test-support/machine-fixture.js';

const NPAGES = 4096;
const ROUNDS = 12;

function hostSetup(faultAroundBytes: number) {
  const mem = new PhysicalMemory({ size: 256 * 1024 * 1024, zeroPage: true });
  const env: FaultEnv = makeFaultEnv({ mem, cost: defaultCostModel, faultAroundBytes, useZeroPage: false });
  const rcu = createRcu();
  const mmu = new Mmu(mem, { cpus: 1 });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env, mmu }), rcu });
  const sb = new SuperBlock({ env, rcu });
  const f = sb.open('bench', { read: true, write: true, create: true });
  if (!f.ok) throw new Error('open failed');
  runSync(fileWrite(f.value, 0, new Uint8Array(NPAGES * P).fill(7)));
  runSync(fileFsync(f.value));
  return { env, mm, file: f.value, task: new TaskFaultCounters() };
}

/** One round: map, fault at every address of `addrs`, unmap; returns host ns per fault. */
function roundNs(s: ReturnType<typeof hostSetup>, map: () => void, addrs: number[], write: boolean): number {
  map();
  const t0 = process.hrtime.bigint();
  for (const address of addrs) {
    const out = runSync(
      doUserAddrFault(s.env, {
        mm: s.mm,
        address,
        errorCode: PF_USER | (write ? PF_WRITE : 0),
        task: s.task,
      }),
    );
    if (out.kind !== 'handled') throw new Error(`fault at 0x${address.toString(16)}: ${out.kind}`);
  }
  const ns = Number(process.hrtime.bigint() - t0) / addrs.length;
  munmapSync(s.mm, BASE, NPAGES * P);
  return ns;
}

function hostFigures(): void {
  const anon = hostSetup(65536);
  const mapAnon = () => {
    const r = mmapSync(anon.mm, {
      addr: BASE,
      len: NPAGES * P,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    if (!r.ok) throw new Error('mmap');
  };
  const mapFile = (s: ReturnType<typeof hostSetup>) => () => {
    const r = mmapSync(s.mm, {
      addr: BASE,
      len: NPAGES * P,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE,
      file: { file: s.file, ops: filemapVmOps, readable: true, writable: true },
    });
    if (!r.ok) throw new Error('mmap');
  };
  const around = hostSetup(65536);
  const single = hostSetup(4096);
  const every = Array.from({ length: NPAGES }, (_, i) => BASE + i * P);
  const sixteenth = Array.from({ length: NPAGES / 16 }, (_, i) => BASE + i * 16 * P);
  // Interleaved rounds, so that the load of the machine hits all three alike; the minimum of each.
  let anonNs = Number.POSITIVE_INFINITY;
  let singleNs = Number.POSITIVE_INFINITY;
  let aroundNs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const a = roundNs(anon, mapAnon, every, true);
    const s = roundNs(single, mapFile(single), every, false);
    const f = roundNs(around, mapFile(around), sixteenth, false);
    if (r < 2) continue; // warm-up
    anonNs = Math.min(anonNs, a);
    singleNs = Math.min(singleNs, s);
    aroundNs = Math.min(aroundNs, f);
  }
  console.log(
    `Host time per fault (runSync; ${ROUNDS - 2} interleaved rounds of ${NPAGES} pages, minimum of each)`,
  );
  console.log('| fault | host ns/fault | ratio to anonymous |');
  console.log('| --- | ---: | ---: |');
  console.log(`| anonymous write (do_anonymous_page) | ${anonNs.toFixed(0)} | 1.00 |`);
  console.log(
    `| file read, cached, fault-around off (1 page/fault) | ${singleNs.toFixed(0)} | ${(singleNs / anonNs).toFixed(2)} |`,
  );
  console.log(
    `| file read, cached, fault-around 64 KiB (16 pages/fault) | ${aroundNs.toFixed(0)} | ${(aroundNs / anonNs).toFixed(2)} |`,
  );
  console.log(
    `| same, per page mapped | ${(aroundNs / 16).toFixed(0)} | ${(aroundNs / 16 / anonNs).toFixed(2)} |`,
  );
}

/** Wraps the mm's mmap_lock read side to add up how long the faulting task holds it. */
function measureHold(mm: MmStruct): { held: () => number } {
  let since = -1;
  let total = 0;
  const rl = mm.mmapReadLock.bind(mm);
  const rt = mm.mmapReadTrylock.bind(mm);
  const ru = mm.mmapReadUnlock.bind(mm);
  mm.mmapReadLock = function* (): Kernel<void> {
    yield* rl();
    since = yield* now();
  };
  mm.mmapReadTrylock = function* (): Kernel<boolean> {
    const ok = yield* rt();
    if (ok) since = yield* now();
    return ok;
  };
  mm.mmapReadUnlock = function* (): Kernel<void> {
    total += (yield* now()) - since;
    yield* ru();
  };
  return { held: () => total };
}

function timedFigures(): void {
  const rows: string[] = [];
  for (const drop of [true, false]) {
    const fx = makeMachineFixture({
      device: { latencyNs: defaultCostModel.diskRead },
      dropMmapLockForIo: drop,
    });
    const hold = measureHold(fx.mm);
    const res: Record<string, number> = {};
    fx.m.spawn(0, 'faulter', function* (): Kernel<void> {
      res.major = (yield* fx.fault(BASE)).ns;
      res.majorHold = hold.held();
      res.minor = (yield* fx.fault(BASE + 16 * P)).ns;
      res.minorHold = hold.held() - res.majorHold;
    });
    fx.m.spawn(1, 'mmap-writer', function* (): Kernel<void> {
      yield* delay(10_000);
      const t0 = yield* now();
      yield* fx.mm.mmapWriteLock();
      res.writerWait = (yield* now()) - t0;
      yield* fx.mm.mmapWriteUnlock();
    });
    const r = fx.m.run();
    if (r.failure) throw new Error(r.failure.message);
    rows.push(
      `| ${drop ? 'with retry (Linux)' : 'without retry (lock held over I/O)'} | ${fmt(res.minor)} | ${fmt(res.major)} | ${fmt(res.majorHold)} | ${fmt(res.writerWait)} |`,
    );
  }
  console.log(
    `\nSimulated time, timed policy, 2 CPUs, device latency ${defaultCostModel.diskRead / 1000} us + 1 us/page, read_ahead_kb 128`,
  );
  console.log(
    '| mode | minor fault | major fault | mmap_lock held by the major fault | writer waits (arrives at 10 us) |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(r);
}

function fmt(ns: number): string {
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} us` : `${ns.toFixed(0)} ns`;
}

hostFigures();
if (process.env.BENCH_HOST_ONLY) process.exit(0);
timedFigures();
