// Host throughput of the VMA layer (not a test): prints the figures in the README.
//   npx tsx bench/vma.ts
import { Prng, runSync } from '@spf/machine';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MmStruct,
  mmapSync,
  munmapSync,
  PROT_READ,
  PROT_WRITE,
} from '../src/index.js';

const P = 4096;
const A = 0x100000000000;

/** An mm with `n` one-page VMAs separated by one-page holes, so none merge. */
function mmWith(n: number): MmStruct {
  const mm = new MmStruct();
  for (let i = 0; i < n; i++) {
    const r = mmapSync(mm, {
      addr: A + i * 2 * P,
      len: P,
      prot: i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
    });
    if (!r.ok) throw new Error(`mmap ${i} failed with errno ${r.errno}`);
  }
  return mm;
}

function timeIt(minMs: number, body: () => number): number {
  let ops = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    ops += body();
    t = performance.now();
  }
  return ops / ((t - t0) / 1000);
}

function lookups(n: number): { plain: number; rcu: number; height: number } {
  const mm = mmWith(n);
  const prng = new Prng(42);
  const addrs = Float64Array.from({ length: 4096 }, () => A + prng.below(n * 2) * P + 123);
  let sink = 0;
  let next = 0;
  let plain = 0;
  let rcu = 0;
  // Best of three interleaved rounds: the host is shared, so single rounds are noisy.
  for (let round = 0; round < 3; round++) {
    plain = Math.max(
      plain,
      timeIt(400, () => {
        for (let i = 0; i < addrs.length; i++) sink += mm.findVma(addrs[i])?.vmStart ?? 0;
        return addrs.length;
      }),
    );
    rcu = Math.max(
      rcu,
      timeIt(200, () => {
        for (let i = 0; i < 256; i++) {
          sink += runSync(mm.findVmaRcu(addrs[next]))?.vmStart ?? 0;
          next = (next + 1) % addrs.length;
        }
        return 256;
      }),
    );
  }
  if (sink === 42) console.log('');
  return { plain, rcu, height: mm.tree.height() };
}

/** An mm with `n` one-page VMAs packed top-down below mmap_base by hint-less mmaps (alternating protections). */
function mmPacked(n: number): MmStruct {
  const mm = new MmStruct();
  for (let i = 0; i < n; i++) {
    const r = mmapSync(mm, {
      addr: 0,
      len: P,
      prot: i % 2 ? PROT_READ : PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    if (!r.ok) throw new Error(`mmap ${i} failed with errno ${r.errno}`);
  }
  return mm;
}

function mmapMunmapPairs(existing: number, packed = false): number {
  const mm = packed ? mmPacked(existing) : mmWith(existing);
  let best = 0;
  for (let round = 0; round < 3; round++) best = Math.max(best, pairs(mm));
  return best;
}

function pairs(mm: MmStruct): number {
  return timeIt(400, () => {
    const r = mmapSync(mm, {
      addr: 0,
      len: 4 * P,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
    });
    if (!r.ok) throw new Error(`mmap failed with errno ${r.errno}`);
    const u = munmapSync(mm, r.value, 4 * P);
    if (!u.ok) throw new Error(`munmap failed with errno ${u.errno}`);
    return 1;
  });
}

const fmt = (x: number) => `${(x / 1e6).toFixed(2)} M/s`;
console.log(
  'findVma lookups per second (one host core, synchronous tree walk; RCU walk = runSync(findVmaRcu))',
);
console.log('| VMAs | tree height | findVma | findVmaRcu (effects) |');
console.log('|---:|---:|---:|---:|');
for (const n of (process.env.SPF_BENCH_SIZES ?? '10,1000,65000').split(',').map(Number)) {
  const r = lookups(n);
  console.log(`| ${n} | ${r.height} | ${fmt(r.plain)} | ${fmt(r.rcu)} |`);
}
console.log('');
console.log('mmap+munmap pairs per second (4-page anonymous mapping, top-down address choice, runSync)');
console.log('| existing VMAs | placed | pairs/s |');
console.log('|---:|---|---:|');
const pairSizes: [number, boolean][] = [
  [10, false],
  [1000, false],
  [1000, true],
  [65000, true],
];
for (const [n, packed] of pairSizes) {
  const t0 = performance.now();
  const rate = Math.round(mmapMunmapPairs(n, packed)).toLocaleString('en-US');
  const where = packed ? 'packed below mmap_base (the free gap is under all of them)' : 'far below mmap_base';
  console.log(`| ${n} | ${where} | ${rate} |`);
  if (n === 65000) {
    console.log(
      `(building and measuring the 65,000-VMA mm took ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
}
