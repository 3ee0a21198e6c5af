import { Rcu } from '@spf/locks';
import { EffectKind, type Kernel, Machine, runSync, UseAfterFreeError } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { anonVmaPrepare } from './anon-vma.js';
import type { RssCounterInfo } from './memory/mm-counter.js';
import { MmIds } from './mm-ids.js';
import {
  DEFAULT_MAX_MAP_COUNT,
  DEFAULT_MMAP_BASE,
  DEFAULT_MMAP_MIN_ADDR,
  DEFAULT_STACK_GUARD_GAP,
  DEFAULT_START_BRK,
  getVma,
  getVmaNotZero,
  MmStruct,
  NoPageTablesError,
  putVma,
  TASK_SIZE_4LEVEL,
  VmFileReleaseConfigError,
  vmRcuPut,
} from './mm-struct.js';
import { NoPageTables } from './page-table-ops.js';
import { PagetableOps } from './pagetable-backed-ops.js';
import { mmapSync } from './sync-api.js';
import { type VmFile, VmArea } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_EXEC,
  VM_GROWSDOWN,
  VM_LOCKED,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vm-flags.js';
import { vmaIsWriteLocked, vmaStartWrite } from './vma-lock.js';
import { VmaRbTree } from './vma-rbtree.js';

const P = 4096;
const A = 0x1000_0000;

function map(mm: MmStruct, addr: number, pages: number) {
  const r = mmapSync(mm, {
    addr,
    len: pages * P,
    prot: PROT_READ | PROT_WRITE,
    flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
  });
  expect(r).toEqual({ ok: true, value: addr });
}

/** A file that counts its references. */
class CountedFile implements VmFile {
  readonly path = '/counted';
  readonly devMajor = 8;
  readonly devMinor = 1;
  readonly ino = 12;
  refs = 0;
  get(): void {
    this.refs++;
  }
  *put(): Kernel<void> {
    this.refs--;
  }
}

/** A VMA of `mm` outside any tree, holding the tree's one reference. */
function looseVma(mm: MmStruct, file: VmFile | null = null): VmArea {
  return new VmArea(mm, A, A + P, VM_READ, 0, file);
}

const seqName = (s: unknown) => (s as { name: string }).name;

describe('MmStruct: construction (mm_init())', () => {
  it("takes Linux's x86-64 defaults and names its locks and counters after the mm", () => {
    const mm = new MmStruct();
    expect(mm.id).toBe(0);
    expect(mm.name).toBe('mm#0');
    expect(String(mm)).toBe('mm#0');
    expect(mm.maxMapCount).toBe(DEFAULT_MAX_MAP_COUNT);
    expect(mm.mmapLockKind).toBe('rwsem');
    expect(mm.mmapLock.name).toBe('mm#0->mmap_lock');
    expect(seqName(mm.pageTableLock)).toBe('mm#0->page_table_lock');
    // Every mm's page_table_lock is one lockdep class.
    expect((mm.pageTableLock as unknown as { lockClass: string }).lockClass).toBe('mm->page_table_lock');
    expect([mm.mmUsers.value, mm.mmCount.value]).toEqual([1, 1]);
    expect([mm.mmUsers.line.label, mm.mmCount.line.label]).toEqual(['mm#0->mm_users', 'mm#0->mm_count']);
    expect(mm.rss).toEqual([0, 0, 0, 0]);
    expect(mm.rssCounting).toBe('percpu');
    expect(mm.rssLine.label).toBe('mm#0->rss_stat');
    expect(mm.rssStat).toBeNull();
    expect(seqName(mm.mmSeq)).toBe('mm#0->mm_seq');
    expect(seqName(mm.spfTreeSeq)).toBe('mm#0->mm_seq(v12)');
    expect(mm.mmLockSeq.value).toBe(0);
    expect(mm.mmLockSeq.line.label).toBe('mm#0->mm_lock_seq');
    expect(mm.ownsSyncRcu).toBe(true);
    expect(mm.taskSize).toBe(TASK_SIZE_4LEVEL);
    expect(mm.mmapBase).toBe(DEFAULT_MMAP_BASE);
    expect(mm.mmapMinAddr).toBe(DEFAULT_MMAP_MIN_ADDR);
    expect(mm.stackGuardGap).toBe(DEFAULT_STACK_GUARD_GAP);
    expect(mm.rlimitAs).toBe(Number.POSITIVE_INFINITY);
    expect(mm.capSysRawio).toBe(false);
    expect([mm.startBrk, mm.brk, mm.startStack]).toEqual([DEFAULT_START_BRK, DEFAULT_START_BRK, null]);
    expect([mm.freePgtablesUnderPtl, mm.pgtableFreeRcu, mm.spfV12]).toEqual([false, false, null]);
    expect(mm.vmFileRelease).toBe('removeVma');
    expect(mm.overcommit).toBeNull();
    expect(mm.pageTables).toBeInstanceOf(NoPageTables);
    expect([mm.totalVm, mm.lockedVm, mm.dataVm, mm.execVm, mm.stackVm, mm.committed]).toEqual([
      0, 0, 0, 0, 0, 0,
    ]);
    expect([mm.mapCount, mm.generation]).toEqual([0, 0]);
    // The tree is named after the mm; no CPU has counted RSS yet.
    expect(mm.tree.rootLine.label).toBe('mm#0->mm_mt');
    expect(mm.rssCpuLines).toEqual([]);
  });

  it('takes every field of its config', () => {
    const ids = new MmIds();
    const rcu = new Rcu(1);
    const overcommit = { mode: 'never' } as never;
    const mm = new MmStruct({
      ids,
      rcu,
      name: 'task',
      mmapLock: 'range',
      taskSize: 0x10000000,
      mmapBase: 0x8000000,
      mmapMinAddr: 0x2000,
      maxMapCount: 9,
      stackGuardGap: 2 * P,
      startBrk: 0x400000,
      startStack: 0x7000000,
      capSysRawio: true,
      rlimitAs: 64 * P,
      rssCounting: 'atomic',
      freePgtablesUnderPtl: true,
      pgtableFreeRcu: true,
      spfV12: { rcuPut: true },
      vmFileRelease: 'rcu',
      overcommit,
      vmaLocking: { endWriteAll: 'after-unlock' },
    });
    expect(mm.ids).toBe(ids);
    expect(mm.rcu).toBe(rcu);
    expect(mm.ownsSyncRcu).toBe(false);
    expect(mm.name).toBe('task');
    expect(mm.mmapLockKind).toBe('range');
    expect(mm.mmapLock.name).toBe('task->mmap_lock');
    expect([mm.taskSize, mm.mmapBase, mm.mmapMinAddr, mm.maxMapCount, mm.stackGuardGap]).toEqual([
      0x10000000,
      0x8000000,
      0x2000,
      9,
      2 * P,
    ]);
    expect([mm.startBrk, mm.brk, mm.startStack, mm.capSysRawio, mm.rlimitAs]).toEqual([
      0x400000,
      0x400000,
      0x7000000,
      true,
      64 * P,
    ]);
    expect(mm.rssCounting).toBe('atomic');
    expect([mm.freePgtablesUnderPtl, mm.pgtableFreeRcu]).toEqual([true, true]);
    expect(mm.spfV12).toEqual({ rcuPut: true });
    expect(mm.vmFileRelease).toBe('rcu');
    expect(mm.overcommit).toBe(overcommit);
    expect(mm.vmaLocking.endWriteAll).toBe('after-unlock');
  });

  it('puts mmap_base at the top of a task size below the default one', () => {
    expect(new MmStruct({ taskSize: 0x10000000 }).mmapBase).toBe(0x10000000);
  });

  it('numbers the mms of one id space in order', () => {
    const ids = new MmIds();
    expect([new MmStruct({ ids }).name, new MmStruct({ ids }).name]).toEqual(['mm#0', 'mm#1']);
  });

  it('makes one rss_stat counter per type with an rssCounting factory', () => {
    const made: RssCounterInfo[] = [];
    const mm = new MmStruct({
      name: 'm',
      rssCounting: (info) => {
        made.push(info);
        return { *add() {}, read: () => 0, sum: () => 0 } as never;
      },
    });
    expect(made).toEqual([
      { name: 'm->rss_stat[MM_FILEPAGES]', type: 0 },
      { name: 'm->rss_stat[MM_ANONPAGES]', type: 1 },
      { name: 'm->rss_stat[MM_SWAPENTS]', type: 2 },
      { name: 'm->rss_stat[MM_SHMEMPAGES]', type: 3 },
    ]);
    expect(mm.rssStat).toHaveLength(4);
  });

  it.each([
    ['taskSize', { taskSize: 0x10000001 }, 0x10000001],
    ['taskSize', { taskSize: -P }, -P],
    ['taskSize', { taskSize: 2 ** 53 }, 2 ** 53],
    ['mmapBase', { mmapBase: 0x100 }, 0x100],
    ['startBrk', { startBrk: 0x400001 }, 0x400001],
    ['startBrk', { startBrk: -P }, -P],
  ])('refuses a %s that is not a page-aligned non-negative integer', (k, config, v) => {
    expect(() => new MmStruct(config)).toThrow(
      new RangeError(`MmConfig.${k} must be a page-aligned non-negative integer, got ${v}`),
    );
  });

  it('accepts a zero brk start and task size', () => {
    expect(new MmStruct({ startBrk: 0 }).startBrk).toBe(0);
    expect(new MmStruct({ taskSize: 0 }).taskSize).toBe(0);
  });

  it('refuses an unknown vmFileRelease, naming the valid ones', () => {
    expect(() => new MmStruct({ vmFileRelease: 'munmap' as never })).toThrow(
      `MmConfig.vmFileRelease must be one of 'removeVma', 'freeVma', 'rcu', got "munmap"; leave it out for Linux's 'removeVma'`,
    );
    let err: unknown;
    try {
      new MmStruct({ vmFileRelease: (() => 0) as never });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VmFileReleaseConfigError);
    expect((err as Error).name).toBe('VmFileReleaseConfigError');
    // A value JSON cannot write is shown as text.
    expect((err as Error).message).toMatch(/got \(\) => 0;/);
  });

  it('an mm with page tables gives them as its pgd', () => {
    const mem = new PhysicalMemory({ size: 1024 * 1024, zeroPage: false });
    const mm = new MmStruct({ pageTables: PagetableOps.factory({ mem }) });
    expect(mm.pgd).toBe((mm.pageTables as PagetableOps).pgd);
  });

  it('an mm without page tables says so when asked for its pgd', () => {
    const mm = new MmStruct({ name: 'bare' });
    let err: unknown;
    try {
      void mm.pgd;
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoPageTablesError);
    expect((err as NoPageTablesError).name).toBe('NoPageTablesError');
    expect((err as NoPageTablesError).kind).toBe('no-page-tables');
    expect((err as Error).message).toMatch(/^bare has no page tables \(it was built with the NoPageTables/);
  });

  it("fork's child config keeps the layout, limits, switches and id space, with the new page tables", () => {
    const ids = new MmIds();
    const rcu = new Rcu(1);
    const factory = () => new NoPageTables();
    const parent = new MmStruct({
      ids,
      rcu,
      name: 'p',
      mmapLock: 'range',
      taskSize: 0x10000000,
      mmapBase: 0x8000000,
      mmapMinAddr: 0x2000,
      maxMapCount: 9,
      stackGuardGap: 2 * P,
      startBrk: 0x400000,
      startStack: 0x7000000,
      capSysRawio: true,
      rlimitAs: 64 * P,
      rssCounting: 'atomic',
      freePgtablesUnderPtl: true,
      pgtableFreeRcu: true,
      spfV12: { rcuPut: false },
      vmFileRelease: 'freeVma',
      vmaLocking: { startWrite: { dupMmap: false } },
    });
    expect(parent.childConfig(factory)).toEqual({
      mmapLock: 'range',
      rcu,
      taskSize: 0x10000000,
      mmapBase: 0x8000000,
      mmapMinAddr: 0x2000,
      maxMapCount: 9,
      stackGuardGap: 2 * P,
      startBrk: 0x400000,
      startStack: 0x7000000,
      rlimitAs: 64 * P,
      capSysRawio: true,
      pageTables: factory,
      rssCounting: 'atomic',
      freePgtablesUnderPtl: true,
      pgtableFreeRcu: true,
      spfV12: { rcuPut: false },
      vmFileRelease: 'freeVma',
      overcommit: null,
      vmaLocking: parent.vmaLocking,
      ids,
      name: 'p.child',
    });
    expect(parent.childConfig(factory).ids).toBe(ids);
    // An mm that made its own RCU gives the child its own one too.
    expect(new MmStruct().childConfig().rcu).toBeUndefined();
  });
});

describe('MmStruct: lookups', () => {
  function threeVmas() {
    const mm = new MmStruct();
    map(mm, A, 2);
    mmapSync(mm, {
      addr: A + 4 * P,
      len: P,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    mmapSync(mm, {
      addr: A + 8 * P,
      len: 2 * P,
      prot: PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    const [v0, v1, v2] = [...mm.vmas()];
    return { mm, v0, v1, v2 };
  }

  it('find_vma(), vma_lookup(), the previous VMA and find_vma_intersection()', () => {
    const { mm, v0, v1, v2 } = threeVmas();
    expect([v0.vmStart, v1.vmStart, v2.vmStart]).toEqual([A, A + 4 * P, A + 8 * P]);
    expect(mm.findVma(A + 2 * P)).toBe(v1);
    expect(mm.findVma(A + 10 * P)).toBeNull();
    expect(mm.vmaLookup(A + 2 * P)).toBeNull();
    expect(mm.vmaLookup(A + P)).toBe(v0);
    expect(mm.findVmaPrev(A + 4 * P)).toBe(v0);
    expect(mm.findVmaPrev(A + 5 * P)).toBe(v1);
    expect(mm.findVmaPrev(A)).toBeNull();
    expect(mm.findVmaIntersection(A + 2 * P, A + 4 * P)).toBeNull();
    expect(mm.findVmaIntersection(A + 2 * P, A + 4 * P + 1)).toBe(v1);
    expect(mm.findVmaIntersection(A + 10 * P, A + 20 * P)).toBeNull();
  });

  it('for_each_vma() from an address and for_each_vma_range()', () => {
    const { mm, v0, v1, v2 } = threeVmas();
    expect([...mm.vmas()]).toEqual([v0, v1, v2]);
    expect([...mm.vmas(A + 2 * P)]).toEqual([v1, v2]);
    expect([...mm.vmasIn(A + P, A + 8 * P)]).toEqual([v0, v1]);
    expect([...mm.vmasIn(A + P, A + 8 * P + 1)]).toEqual([v0, v1, v2]);
    expect([...mm.vmasIn(A + 2 * P, A + 4 * P)]).toEqual([]);
  });

  it('the lockless find_vma under RCU', () => {
    const { mm, v1 } = threeVmas();
    expect(runSync(mm.findVmaRcu(A + 2 * P))).toBe(v1);
    expect(runSync(mm.findVmaRcu(A + 10 * P))).toBeNull();
  });
});

describe('MmStruct: the mmap lock and its sequence counts', () => {
  it('read lock, read trylock', () => {
    const mm = new MmStruct();
    runSync(mm.mmapReadLock());
    expect(mm.mmapLock.readers()).toBe(1);
    expect(runSync(mm.mmapReadTrylock())).toBe(true);
    expect(mm.mmapLock.readers()).toBe(2);
    runSync(mm.mmapReadUnlock());
    runSync(mm.mmapReadUnlock());
    expect(mm.mmapLock.isLocked()).toBe(false);
    runSync(mm.mmapWriteLock());
    expect(runSync(mm.mmapReadTrylock())).toBe(false);
    runSync(mm.mmapWriteUnlock());
  });

  it('a write section makes mm_seq odd; the unlock makes it even and bumps mm_lock_seq', () => {
    const mm = new MmStruct();
    runSync(mm.mmapWriteLock());
    expect(mm.mmapLock.isWriteLocked()).toBe(true);
    expect(mm.mmSeq.peek()).toBe(1);
    runSync(mm.mmapWriteUnlock());
    expect(mm.mmSeq.peek()).toBe(2);
    expect(mm.mmLockSeq.value).toBe(1);
    expect(mm.mmapLock.isLocked()).toBe(false);
  });

  it("vma_end_write_all() runs before up_write() by default, after it with 'after-unlock'", () => {
    for (const order of ['before-unlock', 'after-unlock'] as const) {
      const heldAtEnd: boolean[] = [];
      const mm = new MmStruct({
        vmaLocking: {
          endWriteAll: order,
          paths: {
            *vmaEndWriteAll(m) {
              heldAtEnd.push(m.mmapLock.isLocked());
              yield* m.mmLockSeq.update((v) => v + 1);
            },
          },
        },
      });
      runSync(mm.mmapWriteLock());
      runSync(mm.mmapWriteUnlock());
      expect(heldAtEnd).toEqual([order === 'before-unlock']);
      expect(mm.mmapLock.isLocked()).toBe(false);
      expect(mm.mmSeq.peek()).toBe(2);
    }
  });

  it('mmap_write_downgrade() ends the VMA write locks and keeps the lock for reading', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    runSync(mm.mmapWriteLock());
    const seq = mm.mmLockSeq.value;
    runSync(vmaStartWrite(vma));
    expect(vmaIsWriteLocked(vma)).toBe(true);
    runSync(mm.mmapWriteDowngrade());
    expect(vmaIsWriteLocked(vma)).toBe(false);
    expect(mm.mmLockSeq.value).toBe(seq + 1);
    expect(mm.mmSeq.peek() % 2).toBe(0);
    expect(mm.mmapLock.isWriteLocked()).toBe(false);
    expect(mm.mmapLock.readers()).toBe(1);
    runSync(mm.mmapReadUnlock());
  });
});

describe('MmStruct: tree updates', () => {
  it('commitTree publishes, bumps the generation, and hands the replaced nodes to RCU', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    map(mm, A, 1);
    runSync(rcu.synchronize());
    const gen = mm.generation;
    const pending = rcu.pendingCallbacks;
    const vma = new VmArea(mm, A + 4 * P, A + 5 * P, VM_READ, 0);
    const oldRoot = mm.tree.root as { poisoned: string | null };
    const tx = mm.beginTree();
    tx.insert(vma.vmStart, vma.vmEnd, vma);
    runSync(mm.commitTree(tx));
    expect(mm.findVma(A + 4 * P)).toBe(vma);
    expect(mm.generation).toBe(gen + 1);
    expect(rcu.pendingCallbacks).toBeGreaterThan(pending);
    runSync(rcu.synchronize());
    expect(oldRoot.poisoned).toMatch(/^kfree_rcu of maple node replaced by a tree update by /);
    // Without SPF v12 the tree updates do not touch v12's mm_seq.
    expect(mm.spfTreeSeq.peek()).toBe(0);
  });

  it('SPF v12 writes each tree update inside its mm_seq', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: true } });
    const tx = mm.beginTree();
    const vma = new VmArea(mm, A, A + P, VM_READ, 0);
    tx.insert(vma.vmStart, vma.vmEnd, vma);
    const seen: number[] = [];
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'commit', function* () {
      yield* mm.commitTree(tx);
      seen.push(mm.spfTreeSeq.peek());
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([2]);
  });

  it('detachVma write-locks the VMA, removes it inside its vm_sequence section and marks it detached', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    map(mm, A + 2 * P, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    runSync(mm.mmapWriteLock());
    const seq = vma.vmSequence.peek();
    const tx = mm.beginTree();
    runSync(mm.detachVma(tx, vma));
    runSync(mm.mmapWriteUnlock());
    runSync(mm.mmapWriteLock());
    expect(vma.detached).toBe(true);
    expect(vma.vmSequence.peek()).toBe(seq + 2);
    runSync(mm.commitTree(tx));
    expect(mm.vmaLookup(A)).toBeNull();
    expect(mm.vmaLookup(A + 2 * P)).not.toBeNull();
    runSync(mm.mmapWriteUnlock());
    // A VMA that is not in the tree is a bug of the caller.
    expect(() => runSync(mm.detachVma(mm.beginTree(), vma))).toThrow(`${vma} is not in the tree of mm#0`);
  });

  it('detachVma write-locks the VMA (vma_start_write at the munmap site)', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    const locked: boolean[] = [];
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'detach', function* () {
      yield* mm.mmapWriteLock();
      yield* mm.detachVma(mm.beginTree(), vma);
      locked.push(vmaIsWriteLocked(vma));
      yield* mm.mmapWriteUnlock();
    });
    expect(m.run().failure).toBeNull();
    expect(locked).toEqual([true]);
  });

  it('detachVma marks the detach with a store to the VMA (vma_mark_detached)', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'detach', function* () {
      yield* mm.mmapWriteLock();
      const tx = mm.beginTree();
      yield* mm.detachVma(tx, vma);
      yield* mm.commitTree(tx);
      yield* mm.mmapWriteUnlock();
    });
    const res = m.run();
    expect(res.failure).toBeNull();
    expect((res.trace ?? []).some((e) => e.label === 'vma_mark_detached')).toBe(true);
  });

  it('detachVma leaves the VMA unlocked with the munmap site off', () => {
    const mm = new MmStruct({ vmaLocking: { startWrite: { munmap: false } } });
    map(mm, A, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    const locked: boolean[] = [];
    const m = new Machine({ cpus: 1 });
    m.spawn(0, 'detach', function* () {
      yield* mm.mmapWriteLock();
      yield* mm.detachVma(mm.beginTree(), vma);
      locked.push(vmaIsWriteLocked(vma));
      yield* mm.mmapWriteUnlock();
    });
    expect(m.run().failure).toBeNull();
    expect(locked).toEqual([false]);
  });
});

describe('MmStruct: accounting', () => {
  it('may_expand_vm(): RLIMIT_AS counts total_vm plus the new pages, inclusive', () => {
    const mm = new MmStruct({ rlimitAs: 10 * P });
    mm.totalVm = 4;
    expect(mm.mayExpandVm(6)).toBe(true);
    expect(mm.mayExpandVm(7)).toBe(false);
    expect(new MmStruct().mayExpandVm(2 ** 40)).toBe(true);
  });

  it('vm_stat_account() sorts pages into locked, exec, stack and data, and commits VM_ACCOUNT ones', () => {
    const mm = new MmStruct();
    const counts = () => [mm.totalVm, mm.lockedVm, mm.execVm, mm.stackVm, mm.dataVm, mm.committed];
    mm.vmStatAccount(VM_READ, 1);
    expect(counts()).toEqual([1, 0, 0, 0, 0, 0]);
    mm.vmStatAccount(VM_READ | VM_EXEC | VM_LOCKED, 2);
    expect(counts()).toEqual([3, 2, 2, 0, 0, 0]);
    mm.vmStatAccount(VM_READ | VM_WRITE | VM_GROWSDOWN | VM_ACCOUNT, 4);
    expect(counts()).toEqual([7, 2, 2, 4, 0, 4]);
    mm.vmStatAccount(VM_READ | VM_WRITE | VM_EXEC, 8);
    expect(counts()).toEqual([15, 2, 2, 4, 8, 4]);
    mm.vmStatAccount(VM_READ | VM_WRITE | VM_SHARED, 16);
    expect(counts()).toEqual([31, 2, 2, 4, 8, 4]);
    mm.vmStatAccount(VM_EXEC | VM_GROWSDOWN, 32);
    expect(counts()).toEqual([63, 2, 34, 4, 8, 4]);
    mm.vmStatAccount(VM_READ | VM_WRITE | VM_ACCOUNT, -4);
    expect(counts()).toEqual([59, 2, 34, 4, 4, 0]);
  });
});

describe('VMA lifetime: remove_vma(), get_vma()/put_vma(), vm_rcu_put()', () => {
  it('remove_vma() calls vm_ops->close, drops the file and anon_vma links, and frees after a grace period', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    const file = new CountedFile();
    const closed: VmArea[] = [];
    const r = mmapSync(mm, {
      addr: A,
      len: P,
      prot: PROT_READ,
      flags: MAP_SHARED | MAP_FIXED,
      file: { file, ops: { close: (v) => closed.push(v) } },
    });
    expect(r.ok).toBe(true);
    const vma = mm.vmaLookup(A) as VmArea;
    expect(file.refs).toBe(1);
    runSync(mm.removeVma(vma));
    expect(closed).toEqual([vma]);
    expect(file.refs).toBe(0);
    expect(vma.refCount.value).toBe(0);
    expect(vma.poisoned).toBeNull();
    runSync(rcu.synchronize());
    // The file was dropped once, by remove_vma(); __free_vma() does not drop it again.
    expect(file.refs).toBe(0);
    expect(vma.poisoned).toMatch(`kfree_rcu of __free_vma of ${vma} by `);
  });

  it('remove_vma() of a VMA whose vm_ops has no close, or whose file has no put, just frees it', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    const noPut: VmFile = { path: '/x', devMajor: 0, devMinor: 0, ino: 1 };
    const vma = new VmArea(mm, A, A + P, VM_READ, 0, noPut, {});
    runSync(mm.removeVma(vma));
    runSync(rcu.synchronize());
    expect(vma.poisoned).not.toBeNull();
  });

  it('remove_vma() unlinks the anon_vma chain', () => {
    const mm = new MmStruct();
    map(mm, A, 1);
    const vma = mm.vmaLookup(A) as VmArea;
    runSync(anonVmaPrepare(vma));
    expect(vma.anonVmaChain).toHaveLength(1);
    runSync(mm.removeVma(vma));
    expect(vma.anonVmaChain).toHaveLength(0);
  });

  it('remove_vma() keeps the file with vmFileRelease freeVma; the last put_vma drops it', () => {
    const mm = new MmStruct({ vmFileRelease: 'freeVma', rcu: new Rcu(1) });
    const file = new CountedFile();
    file.get();
    const vma = looseVma(mm, file);
    runSync(getVma(vma));
    runSync(mm.removeVma(vma));
    expect(file.refs).toBe(1);
    runSync(putVma(vma));
    expect(file.refs).toBe(0);
  });

  it('with vmFileRelease rcu the last put_vma drops the file after a grace period', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ vmFileRelease: 'rcu', rcu });
    const file = new CountedFile();
    file.get();
    const vma = looseVma(mm, file);
    runSync(putVma(vma));
    expect(file.refs).toBe(1);
    runSync(rcu.synchronize());
    expect(file.refs).toBe(0);
  });

  it('a VMA without a file, or whose file has no put, frees without one', () => {
    for (const mode of ['freeVma', 'rcu'] as const) {
      const rcu = new Rcu(1);
      const mm = new MmStruct({ vmFileRelease: mode, rcu });
      const noPut: VmFile = { path: '/x', devMajor: 0, devMinor: 0, ino: 1 };
      for (const f of [null, noPut]) {
        const vma = looseVma(mm, f);
        runSync(putVma(vma));
        runSync(rcu.synchronize());
        expect(vma.poisoned).not.toBeNull();
      }
    }
  });

  it('put_vma(): only the last reference frees; in SPF v12 at once, otherwise after a grace period', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    const vma = looseVma(mm);
    runSync(getVma(vma));
    runSync(putVma(vma));
    runSync(rcu.synchronize());
    expect(vma.poisoned).toBeNull();
    runSync(putVma(vma));
    expect(vma.poisoned).toBeNull();
    runSync(rcu.synchronize());
    expect(vma.poisoned).toMatch(`kfree_rcu of __free_vma of ${vma} by `);

    const v12 = new MmStruct({ spfV12: { rcuPut: true }, rcu: new Rcu(1) });
    const w = looseVma(v12);
    runSync(putVma(w));
    expect(w.poisoned).toBe(`__free_vma of ${w} (last put_vma)`);
  });

  it('SPF v12 frees the VMA with a store a racing reader would see (__free_vma)', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: true }, rcu: new Rcu(1) });
    const vma = looseVma(mm);
    const m = new Machine({ cpus: 1, trace: true });
    m.spawn(0, 'put', () => putVma(vma));
    const res = m.run();
    expect(res.failure).toBeNull();
    expect((res.trace ?? []).some((e) => e.label === '__free_vma')).toBe(true);
  });

  it("vm_rcu_put(): SPF v12 drops the tree's reference after a grace period; rcuPut false or Linux at once", () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ spfV12: { rcuPut: true }, rcu });
    const vma = looseVma(mm);
    runSync(vmRcuPut(vma));
    expect(vma.refCount.value).toBe(1);
    runSync(rcu.synchronize());
    expect(vma.refCount.value).toBe(0);
    expect(vma.poisoned).not.toBeNull();
    for (const spfV12 of [{ rcuPut: false }, null]) {
      const mm2 = new MmStruct({ spfV12, rcu: new Rcu(1) });
      const w = looseVma(mm2);
      runSync(vmRcuPut(w));
      expect(w.refCount.value).toBe(0);
    }
  });

  it('get_vma_not_zero() refuses a VMA whose last reference is gone; both report a freed VMA', () => {
    const rcu = new Rcu(1);
    const mm = new MmStruct({ rcu });
    const vma = looseVma(mm);
    expect(runSync(getVmaNotZero(vma))).toBe(true);
    expect(vma.refCount.value).toBe(2);
    runSync(putVma(vma));
    runSync(putVma(vma));
    expect(runSync(getVmaNotZero(vma))).toBe(false);
    runSync(rcu.synchronize());
    expect(() => runSync(getVmaNotZero(vma))).toThrow(UseAfterFreeError);
    expect(() => runSync(getVmaNotZero(vma))).toThrow(/^vma refcount accessed freed/);
    expect(() => runSync(getVma(vma))).toThrow(/^get_vma accessed freed/);
  });
});

describe("MmStruct: SPF v12's rbtree (spfV12.rbtree)", () => {
  it('is kept only with spfV12.rbtree, named after the mm', () => {
    expect(new MmStruct().rbTree).toBeNull();
    expect(new MmStruct({ spfV12: { rcuPut: true } }).rbTree).toBeNull();
    expect(new MmStruct({ spfV12: { rcuPut: true, rbtree: false } }).rbTree).toBeNull();
    const mm = new MmStruct({ spfV12: { rcuPut: true, rbtree: true } });
    expect(mm.rbTree).toBeInstanceOf(VmaRbTree);
    expect(mm.rbTree?.rootLine.label).toBe(`${mm.name}->mm_rb`);
  });

  it('the lockless find_vma walks the rbtree instead of the B+tree', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: true, rbtree: true } });
    map(mm, A, 1);
    map(mm, A + 2 * P, 1);
    const rb = mm.rbTree as VmaRbTree;
    expect(runSync(mm.findVmaRcu(A + 2 * P))).toBe(mm.findVma(A + 2 * P));
    // An rbtree that lost its root: the walk finds nothing, though the B+tree has the VMA.
    const root = rb.root;
    rb.root = null;
    expect(runSync(mm.findVmaRcu(A + 2 * P))).toBeNull();
    expect(mm.findVma(A + 2 * P)).not.toBeNull();
    rb.root = root;
    // Without the rbtree the same lookup walks the B+tree.
    const plain = new MmStruct({ spfV12: { rcuPut: true } });
    map(plain, A, 1);
    expect(runSync(plain.findVmaRcu(A))).toBe(plain.findVma(A));
  });

  it('commitTree erases what the B+tree lost, then links what it gained in address order, each in its own mm_seq section', () => {
    const mm = new MmStruct({ spfV12: { rcuPut: true, rbtree: true } });
    map(mm, A, 1);
    map(mm, A + 4 * P, 1);
    const rb = mm.rbTree as VmaRbTree;
    const [gone, stays] = [...mm.vmas()];
    const staysNode = rb.nodeOf(stays);
    expect(mm.spfTreeSeq.peek()).toBe(4);
    const low = new VmArea(mm, A + 2 * P, A + 3 * P, VM_READ, 0);
    const high = new VmArea(mm, A + 6 * P, A + 7 * P, VM_READ, 0);
    const tx = mm.beginTree();
    tx.remove(gone.vmEnd);
    tx.insert(high.vmStart, high.vmEnd, high);
    tx.insert(low.vmStart, low.vmEnd, low);
    // At each store to the rbtree: mm_seq, and which of the three VMAs are linked.
    const seen: string[] = [];
    const nodeLines = new Set([rb.rootLine, ...[gone, stays, low, high].map((v) => v.line)]);
    runSync(
      (function* () {
        const code = mm.commitTree(tx);
        let resume: unknown;
        for (;;) {
          const r = code.next(resume);
          if (r.done) return;
          const e = r.value;
          if (e.kind === EffectKind.Write && nodeLines.has(e.line)) {
            const linked = [gone, low, high].map((v) => (rb.has(v) ? 1 : 0)).join('');
            const s = `seq ${mm.spfTreeSeq.peek()}: ${linked}`;
            if (seen[seen.length - 1] !== s) seen.push(s);
          }
          resume = yield r.value;
        }
      })(),
    );
    // The erase (only its section's stores), then the lower new VMA, then the higher: three sections; the
    // B+tree's own publication has none.
    expect(seen).toEqual(['seq 5: 000', 'seq 7: 010', 'seq 9: 011']);
    expect(mm.spfTreeSeq.peek()).toBe(10);
    expect(rb.validate([low, stays, high])).toEqual([]);
    // The VMA that stayed kept its node (nothing re-linked it).
    expect(rb.nodeOf(stays)).toBe(staysNode);
  });
});
