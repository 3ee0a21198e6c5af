// Cost of file-backed faults (not a test): prints the figures in the README.
//   pnpm run bench        (tsx --conditions=@spf/source bench/file-fault.ts)
//
// 1. Host time per minor fault on a cached file against an anonymous fault, measured in the same run
//    (runSync, no machine): the file fault with fault-around on (64 KiB: one fault maps 16 pages) and off
//    (fault_around_bytes 4096: one page per fault, the same work as an anonymous fault).
//    BENCH_ROUNDS=n sets the rounds (default 40); BENCH_HOST_ONLY=1 stops after these figures;
//    BENCH_BASELINE=baseline/src/index.ts also times a copy of this package's sources in the same rounds,
//    for before/after figures of a change (make it with `mkdir -p baseline && git archive
//    REV:packages/file-backed src | tar -x -C baseline`; git ignores that folder).
// 2. Simulated cost under the timed policy with an 80 us device (the cost model's NVMe diskRead): a minor
//    fault, a major fault, and how long a major fault holds mmap_lock with the retry (Linux:
//    maybe_unlock_mmap_for_io) and without it; and how long a concurrent mmap_lock writer waits.
import { doUserAddrFault, type FaultEnv, makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { defaultCostModel, delay, type Kernel, now, runSync } from '@spf/machine';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
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
import * as current from '../src/index.js';
import { BASE, makeMachineFixture, P } from '../src/test-support/machine-fixture.js';

const NPAGES = 4096;
/** Timed rounds, after WARMUP rounds that are not counted. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 40);
const WARMUP = 6;
/** Faults per kind and round: short rounds, so that each ratio compares faults timed close together. */
const CHUNK = 512;

/** What the host figures use of this package: the current sources, or a baseline copy of them. */
type FileBacked = Pick<typeof current, 'fileFsync' | 'fileWrite' | 'filemapVmOps' | 'SuperBlock'>;

/**
 * BENCH_BASELINE=<path to a copy of this package's src/index.ts, under this package so that it resolves
 * the same @spf packages>: the one-page file fault of that copy is timed in the same rounds, and the table
 * gains its rows and the per-round ratio of the current sources to it (a before/after pair measured alike).
 */
const baselinePath = process.env.BENCH_BASELINE;
const baseline: FileBacked | null = baselinePath
  ? ((await import(pathToFileURL(resolve(baselinePath)).href)) as FileBacked)
  : null;

function hostSetup(faultAroundBytes: number, mod: FileBacked = current) {
  const { fileFsync, fileWrite, SuperBlock } = mod;
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

/** CPU time of this process (user + system), in ns: what a round costs, not counting time descheduled. */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/**
 * One kind of fault, faulted `perRound` times a round at every `stride`-th page of a 4096-page mapping;
 * the mapping is unmapped and made again (untimed) when every page has been used.
 */
function faultSeries(
  kind: 'anon' | 'file',
  faultAroundBytes: number,
  stride: number,
  perRound: number,
  mod: FileBacked = current,
) {
  const s = hostSetup(faultAroundBytes, mod);
  const write = kind === 'anon';
  let next = NPAGES; // page index of the next fault; NPAGES: map first
  const map = () => {
    const r = mmapSync(s.mm, {
      addr: BASE,
      len: NPAGES * P,
      prot: write ? PROT_READ | PROT_WRITE : PROT_READ,
      flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE | (write ? MAP_ANONYMOUS : 0),
      file: write ? undefined : { file: s.file, ops: mod.filemapVmOps, readable: true, writable: true },
    });
    if (!r.ok) throw new Error('mmap');
  };
  /** One round; returns host CPU ns per fault. */
  return (): number => {
    if (next + perRound * stride > NPAGES) {
      if (next < NPAGES || s.mm.findVma(BASE) !== null) munmapSync(s.mm, BASE, NPAGES * P);
      map();
      next = 0;
    }
    const t0 = cpuNs();
    for (let i = 0; i < perRound; i++, next += stride) {
      const address = BASE + next * P;
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
    return (cpuNs() - t0) / perRound;
  };
}

/** The median of `xs` (the mean of the two middle values for an even count). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** `median (first quartile-third quartile)` of per-round values. */
function spread(xs: readonly number[], digits: number): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.round(f * (s.length - 1)))];
  return `${median(xs).toFixed(digits)} (${q(0.25).toFixed(digits)}-${q(0.75).toFixed(digits)})`;
}

function hostFigures(): void {
  const kinds = [
    faultSeries('anon', 65536, 1, CHUNK),
    faultSeries('file', 4096, 1, CHUNK),
    faultSeries('file', 65536, 16, CHUNK / 4),
  ];
  if (baseline !== null) {
    kinds.push(
      faultSeries('file', 4096, 1, CHUNK, baseline),
      faultSeries('file', 65536, 16, CHUNK / 4, baseline),
    );
  }
  // Interleaved rounds (the order rotates each round), so that the drift of a shared machine's speed hits
  // every kind alike; each round gives its own ratios to that round's anonymous fault, and the table shows
  // their median and quartiles. Times are the process's CPU time, so time spent descheduled is not counted.
  const n = kinds.length;
  const ns: number[][] = kinds.map(() => []);
  for (let r = 0; r < ROUNDS + WARMUP; r++) {
    const got = kinds.map(() => 0);
    for (let k = 0; k < n; k++) {
      const i = (r + k) % n;
      got[i] = kinds[i]();
    }
    if (r < WARMUP) continue;
    for (let i = 0; i < n; i++) ns[i].push(got[i]);
  }
  const ratio = (i: number, to = 0, per = 1) => ns[i].map((v, r) => v / per / ns[to][r]);
  console.log(
    `Host CPU time per fault (runSync; ${ROUNDS} interleaved rounds of ${CHUNK} faults (fault-around: ${CHUNK / 4}) after ${WARMUP} warm-up rounds; median (quartiles) over the rounds, each ratio taken within its round)`,
  );
  console.log('| fault | host ns/fault | ratio to anonymous |');
  console.log('| --- | ---: | ---: |');
  console.log(`| anonymous write (do_anonymous_page) | ${spread(ns[0], 0)} | 1.00 |`);
  const fileRows = (first: number, tag: string) => {
    console.log(
      `| file read, cached, fault-around off (1 page/fault)${tag} | ${spread(ns[first], 0)} | ${spread(ratio(first), 2)} |`,
    );
    console.log(
      `| file read, cached, fault-around 64 KiB (16 pages/fault)${tag} | ${spread(ns[first + 1], 0)} | ${spread(ratio(first + 1), 2)} |`,
    );
    console.log(
      `| same, per page mapped${tag} | ${spread(
        ns[first + 1].map((v) => v / 16),
        0,
      )} | ${spread(ratio(first + 1, 0, 16), 2)} |`,
    );
  };
  fileRows(1, '');
  if (baseline === null) return;
  fileRows(3, ', baseline');
  console.log(
    `\nCurrent sources against the baseline (${baselinePath}), per-round ratio: one page/fault ${spread(ratio(1, 3), 3)}, fault-around ${spread(ratio(2, 4), 3)}`,
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
