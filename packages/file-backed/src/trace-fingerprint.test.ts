import { doUserAddrFault, makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { Rcu } from '@spf/locks';
import {
  defaultCostModel,
  type Kernel,
  type Machine,
  policyFingerprints,
  runScenario,
  runSync,
  type Scenario,
} from '@spf/machine';
import { Mmu, PF_USER, PF_WRITE, PhysicalMemory } from '@spf/pagetable';
import {
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MAP_SHARED,
  MmStruct,
  mmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { fadviseDontneed, fileFsync, fileTruncate, fileWrite } from './file-ops.js';
import { filemapVmOps } from './filemap.js';
import { SuperBlock } from './super-block.js';
import { must } from './test-support/fixture.js';

/**
 * Trace hash, simulated end time, step count, schedule and failure of file fault scenarios under every
 * policy (the kernel's `trace-hash.test.ts` holds the same lines for anonymous faults and lock scenarios).
 * They pin the exact sequence of machine effects of the file fault paths (filemap_fault, the page-cache
 * lookup, readahead, fault-around, the COW and shared faults, truncation), so that a host speed-up of
 * those paths can show it changed nothing simulated. Record new values with `SPF_RECORD_FINGERPRINTS=1`
 * only in a commit that changes simulated behaviour on purpose and says why (the lines also move when
 * @spf/machine, @spf/vma or @spf/fault-classic change the effects of a fault).
 */

const BASE = 0x4000_0000;
const P = 4096;

/**
 * Two CPUs, one file of `npages` pages (byte pattern by page) mapped three times: private read-only at
 * BASE, private read-write after it, shared read-write after that. `evicted`: nothing cached at the start.
 */
function fileScenario(opts: {
  npages: number;
  evicted: boolean;
  faultAroundBytes: number;
  cpu0: (f: Faulter) => Kernel<void>;
  cpu1: (f: Faulter) => Kernel<void>;
}): Scenario {
  return {
    cpus: 2,
    setup(m: Machine) {
      const mem = new PhysicalMemory({ size: 16 * 1024 * 1024, zeroPage: true });
      const env = makeFaultEnv({ mem, cost: defaultCostModel, faultAroundBytes: opts.faultAroundBytes });
      const rcu = new Rcu(m);
      const mm = new MmStruct({
        pageTables: PagetableOps.factory({ env, mmu: new Mmu(mem, { cpus: 2 }) }),
        rcu,
      });
      const sb = new SuperBlock({ env, rcu, device: { latencyNs: 20_000 } });
      const file = must(sb.open('fp', { read: true, write: true, create: true }));
      const data = new Uint8Array(opts.npages * P);
      for (let i = 0; i < data.length; i++) data[i] = (i >> 12) * 13;
      must(runSync(fileWrite(file, 0, data)));
      must(runSync(fileFsync(file)));
      if (opts.evicted) must(runSync(fadviseDontneed(file, 0, 0)));
      const len = opts.npages * P;
      const maps: [number, number, number][] = [
        [BASE, PROT_READ, MAP_PRIVATE],
        [BASE + len, PROT_READ | PROT_WRITE, MAP_PRIVATE],
        [BASE + 2 * len, PROT_READ | PROT_WRITE, MAP_SHARED],
      ];
      for (const [addr, prot, flags] of maps) {
        must(
          mmapSync(mm, {
            addr,
            len,
            prot,
            flags: flags | MAP_FIXED_NOREPLACE,
            file: { file, ops: filemapVmOps, readable: true, writable: true },
          }),
        );
      }
      const outcomes: string[] = [];
      const faulter = (cpu: number): Faulter => {
        const task = new TaskFaultCounters();
        return {
          *fault(map: number, page: number, write = false) {
            const out = yield* doUserAddrFault(env, {
              mm,
              address: BASE + map * len + page * P,
              errorCode: PF_USER | (write ? PF_WRITE : 0),
              task,
            });
            outcomes.push(`${cpu}:${map}/${page}${write ? 'w' : 'r'}=${out.kind}`);
          },
          *truncate(pages: number) {
            must(yield* fileTruncate(file, pages * P));
          },
        };
      };
      m.spawn(0, 'cpu0', () => opts.cpu0(faulter(0)));
      m.spawn(1, 'cpu1', () => opts.cpu1(faulter(1)));
      return () => {
        for (const o of outcomes) {
          if (!/=(handled|sigbus)$/.test(o)) throw new Error(`unexpected fault outcome ${o}`);
        }
      };
    },
  };
}

interface Faulter {
  /** A user fault on page `page` of mapping `map` (0 private RO, 1 private RW, 2 shared RW). */
  fault(map: number, page: number, write?: boolean): Kernel<void>;
  truncate(pages: number): Kernel<void>;
}

const scenarios: Record<string, Scenario> = {
  // Major faults with readahead, the retry, fault-around of what the read brought in, and the async
  // readahead a PG_readahead page starts, on two CPUs faulting the same file.
  'major and minor read faults, fault-around 64 KiB': fileScenario({
    npages: 96,
    evicted: true,
    faultAroundBytes: 65536,
    *cpu0(f) {
      yield* f.fault(0, 0);
      yield* f.fault(0, 17);
      yield* f.fault(0, 24);
      yield* f.fault(0, 40);
    },
    *cpu1(f) {
      yield* f.fault(0, 2);
      yield* f.fault(0, 33);
      yield* f.fault(0, 70);
    },
  }),
  // One page per fault on a cached file (the host bench's path), both CPUs on the same pages: the page
  // lock and the PTE lock are contended; COW and shared writes (page_mkwrite) too.
  'minor faults one page each, reads, COW and shared writes': fileScenario({
    npages: 16,
    evicted: false,
    faultAroundBytes: 4096,
    *cpu0(f) {
      for (const p of [0, 1, 2, 3]) yield* f.fault(0, p);
      yield* f.fault(1, 1, true);
      yield* f.fault(2, 2, true);
      yield* f.fault(2, 3);
    },
    *cpu1(f) {
      for (const p of [3, 2, 1, 0]) yield* f.fault(0, p);
      yield* f.fault(1, 1);
      yield* f.fault(2, 2, true);
      yield* f.fault(2, 5, true);
    },
  }),
  // Faults racing ftruncate(): the truncated page is looked up again or gives SIGBUS.
  'read faults racing truncate': fileScenario({
    npages: 8,
    evicted: false,
    faultAroundBytes: 65536,
    *cpu0(f) {
      yield* f.fault(0, 6);
      yield* f.fault(1, 7);
      yield* f.fault(2, 5);
    },
    *cpu1(f) {
      yield* f.truncate(5);
    },
  }),
};

const expected: Record<string, Record<string, string>> = {
  'major and minor read faults, fault-around 64 KiB': {
    timed: '8d8b810a t=123884 steps=2914 sched=0cfa5004 ok',
    random: 'f8f52d18 t=151952 steps=2845 sched=b7a49a9b ok',
    pct: '28ab57fb t=121583 steps=2487 sched=7153cb02 ok',
    dfs: '6 runs 7d854115',
    replay: '28ab57fb t=121583 steps=2487 sched=7153cb02 ok',
  },
  'minor faults one page each, reads, COW and shared writes': {
    timed: '6eb4d0c9 t=6991 steps=635 sched=360aadfd ok',
    random: 'd959f9b2 t=8695 steps=641 sched=0c6e76b2 ok',
    pct: '5b24426c t=4901 steps=569 sched=54fd0f60 ok',
    dfs: '6 runs a7c143f2',
    replay: '5b24426c t=4901 steps=569 sched=54fd0f60 ok',
  },
  'read faults racing truncate': {
    timed: 'a09af9fd t=5361 steps=351 sched=a025ec3e ok',
    random: '444c8a30 t=5420 steps=357 sched=8ddda9f4 ok',
    pct: 'c761922e t=5426 steps=351 sched=0cb0de09 ok',
    dfs: '6 runs 89625072',
    replay: 'c761922e t=5426 steps=351 sched=0cb0de09 ok',
  },
};

describe('file fault trace hashes under every policy', () => {
  for (const [name, scenario] of Object.entries(scenarios)) {
    it(name, () => {
      const got = policyFingerprints((p) => runScenario(scenario, p), { dfsRuns: 6 });
      if (process.env.SPF_RECORD_FINGERPRINTS) console.log(`FP ${JSON.stringify({ [name]: got })}`);
      expect(got.replay).toBe(got.pct);
      expect(got.timed).toMatch(/ ok$/);
      expect(got).toEqual(expected[name]);
    });
  }
});
