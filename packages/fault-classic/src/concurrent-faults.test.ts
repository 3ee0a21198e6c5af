import { exploreInTest, kassert, type Machine } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, PF_USER, PF_WRITE, PhysicalMemory, ptePfn } from '@spf/pagetable';
import {
  MAP_ANONYMOUS,
  MAP_FIXED_NOREPLACE,
  MAP_PRIVATE,
  MmStruct,
  mmInvariantProblems,
  mmapSync,
  PagetableOps,
  PROT_READ,
  PROT_WRITE,
  sysMunmap,
} from '@spf/vma';
import { Rcu } from '@spf/locks';
import { describe, expect, it } from 'vitest';
import { doUserAddrFault } from './do-user-addr-fault.js';
import { TaskFaultCounters } from './fault-counters.js';
import { makeFaultEnv } from './fault-env.js';

const A = 0x1000_0000;

function world(m: Machine, zeroPage: boolean) {
  const mem = new PhysicalMemory({ size: 2 * 1024 * 1024, zeroPage, lineOf: (pa) => m.physLine(pa) });
  const env = makeFaultEnv({ mem, cost: m.cost });
  const mmu = new Mmu(mem, { cpus: m.cpuCount });
  const mm = new MmStruct({ rcu: new Rcu(m), pageTables: PagetableOps.factory({ env, mmu }) });
  const pt = mm.pgd;
  const r = mmapSync(mm, {
    addr: A,
    len: 4 * 4096,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
  });
  kassert(r.ok, 'mmap');
  const problems = () =>
    mmInvariantProblems([mm], {
      mapcount: (p) => (p as { mapcount: number }).mapcount,
      refcount: (p) => (p as { refcount: number }).refcount,
    });
  return { mem, env, mmu, mm, pt, problems };
}

describe('concurrent faults (explored schedules)', () => {
  it('two CPUs writing the same new page install exactly one page; the loser frees its own', () => {
    exploreInTest(
      {
        name: 'same-page write race',
        cpus: 2,
        setup(m) {
          const w = world(m, true);
          const free0 = w.mem.freeCount;
          const tasks = [new TaskFaultCounters(), new TaskFaultCounters()];
          for (let cpu = 0; cpu < 2; cpu++) {
            m.spawn(cpu, `writer${cpu}`, function* () {
              w.mmu.switchMm(cpu, w.pt);
              for (let i = 0; i < 4; i++) {
                if (w.mmu.access(cpu, A + 8, ACCESS_USER | ACCESS_WRITE) >= 0) return;
                const out = yield* doUserAddrFault(w.env, {
                  mm: w.mm,
                  address: A + 8,
                  errorCode: w.mmu.fault.errorCode,
                  task: tasks[cpu],
                });
                kassert(out.kind === 'handled', `fault outcome ${out.kind}`);
              }
              kassert(false, 'the page never became writable');
            });
          }
          return () => {
            kassert(w.problems().length === 0, () => w.problems().join('; '));
            const page = w.mem.page(ptePfn(w.pt.lookup(A).at(-1)?.entry ?? 0n));
            kassert(
              page.refcount === 1 && page.mapcount === 1,
              `refcount ${page.refcount}, mapcount ${page.mapcount}`,
            );
            // One data page plus the page tables (PDPT, PD, PT): nothing leaked by the losing CPU.
            kassert(free0 - w.mem.freeCount === 4, `${free0 - w.mem.freeCount} frames in use`);
            kassert(w.mm.rss[1] === 1, `MM_ANONPAGES is ${w.mm.rss[1]}`);
          };
        },
      },
      { policy: 'random', runs: 150, seed: 7 },
      'two CPUs writing the same new page install exactly one page; the loser frees its own',
    );
  });

  it('faults racing with munmap never leave a PTE outside a VMA', () => {
    const res = exploreInTest(
      {
        name: 'fault vs munmap',
        cpus: 2,
        setup(m) {
          const w = world(m, false);
          const task = new TaskFaultCounters();
          m.spawn(0, 'toucher', function* () {
            w.mmu.switchMm(0, w.pt);
            for (let p = 0; p < 4; p++) {
              const a = A + p * 4096;
              if (w.mmu.access(0, a, ACCESS_USER | ACCESS_WRITE) >= 0) continue;
              const out = yield* doUserAddrFault(w.env, {
                mm: w.mm,
                address: a,
                errorCode: PF_USER | PF_WRITE,
                task,
              });
              kassert(
                out.kind === 'handled' || (out.kind === 'sigsegv' && out.code === 'MAPERR'),
                `fault outcome ${out.kind}`,
              );
            }
          });
          m.spawn(1, 'unmapper', function* () {
            const r = yield* sysMunmap(w.mm, A + 4096, 2 * 4096);
            kassert(r.ok, 'munmap');
          });
          return () => kassert(w.problems().length === 0, () => w.problems().join('; '));
        },
      },
      { policy: 'pct', runs: 150, seed: 3, depth: 3 },
      'faults racing with munmap never leave a PTE outside a VMA',
    );
    expect(res.failure).toBeNull();
  });
});
