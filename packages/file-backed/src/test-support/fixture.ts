import type { FilemapRetryPaths } from '../filemap-retry-paths.js';
import {
  doUserAddrFault,
  type FaultEnv,
  type FaultOutcome,
  makeFaultEnv,
  type UserFault,
  TaskFaultCounters,
} from '@spf/fault-classic';
import { defaultCostModel, type Kernel, runSync } from '@spf/machine';
import { ACCESS_USER, ACCESS_WRITE, Mmu, PhysicalMemory } from '@spf/pagetable';
import { createRcu, MAP_FIXED_NOREPLACE, MmStruct, mmapSync, PagetableOps, type RcuLike } from '@spf/vma';
import type { BlockDeviceOptions } from '../block-device.js';
import type { File } from '../file.js';
import { fileFsync, fileWrite, fadviseDontneed } from '../file-ops.js';
import { filemapVmOps } from '../filemap.js';
import { SuperBlock } from '../super-block.js';

/** Byte b of page p of file `id` in the replay format's files: `(p*13 + b*7 + id) & 0xff`. */
export function patternByte(id: number, p: number, b: number): number {
  return (p * 13 + b * 7 + id) & 0xff;
}

/** Unwraps a SysResult in tests. */
export function must<T>(r: { ok: true; value: T } | { ok: false; errno: number }): T {
  if (!r.ok) throw new Error(`syscall failed with errno ${r.errno}`);
  return r.value;
}

export type TouchResult =
  | { readonly ok: true; readonly value: number }
  | Exclude<FaultOutcome, { kind: 'handled' }>;

/** A single-CPU system (runSync: device interrupts complete at once) with one mounted file system. */
export function makeFileFixture(
  opts: {
    device?: BlockDeviceOptions;
    faultAroundBytes?: number;
    /** The file system's `retryPaths` (the filemap_fault pieces to inject); default the package's. */
    retryPaths?: FilemapRetryPaths;
    /** A fault handler to use instead of fault-classic's doUserAddrFault (a FaultHandler's handleUserFault). */
    handler?: (env: FaultEnv) => (fault: UserFault) => Kernel<FaultOutcome>;
  } = {},
) {
  const mem = new PhysicalMemory({ size: 64 * 1024 * 1024, zeroPage: true });
  const env: FaultEnv = makeFaultEnv({
    mem,
    cost: defaultCostModel,
    faultAroundBytes: opts.faultAroundBytes,
  });
  const rcu: RcuLike = createRcu();
  const mmu = new Mmu(mem, { cpus: 1 });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env, mmu }), rcu });
  const sb = new SuperBlock({ env, rcu, device: opts.device, retryPaths: opts.retryPaths });
  const task = new TaskFaultCounters();
  const handle = opts.handler?.(env) ?? ((fault: UserFault) => doUserAddrFault(env, fault));
  const run = <T>(k: Kernel<T>): T => runSync(k);

  /** `file <id> <npages>` of the replay format: create, fill with the pattern, fsync. */
  function makeFile(id: number, npages: number): File {
    const f = must(sb.open(`f${id}`, { read: true, write: true, create: true }));
    const data = new Uint8Array(npages * 4096);
    for (let p = 0; p < npages; p++)
      for (let b = 0; b < 4096; b++) data[p * 4096 + b] = patternByte(id, p, b);
    must(run(fileWrite(f, 0, data)));
    must(run(fileFsync(f)));
    return f;
  }

  function evict(f: File): void {
    must(run(fileFsync(f)));
    must(run(fadviseDontneed(f, 0, 0)));
  }

  function mmapFile(addr: number, pages: number, prot: number, flags: number, f: File, pgoff = 0): number {
    return must(
      mmapSync(mm, {
        addr,
        len: pages * 4096,
        prot,
        flags: flags | MAP_FIXED_NOREPLACE,
        offset: pgoff * 4096,
        file: { file: f, ops: filemapVmOps, readable: f.readable, writable: f.writable },
      }),
    );
  }

  function touch(address: number, kind: 'r' | 'w', value = 0x77): TouchResult {
    mmu.switchMm(0, mm.pgd);
    const acc = ACCESS_USER | (kind === 'w' ? ACCESS_WRITE : 0);
    for (let faults = 0; faults < 8; faults++) {
      const pa = mmu.access(0, address, acc);
      if (pa >= 0) {
        if (kind === 'w') mem.write8(pa, value);
        return { ok: true, value: kind === 'r' ? mem.read8(pa) : 0 };
      }
      const out = run(handle({ mm, address, errorCode: mmu.fault.errorCode, task }));
      if (out.kind !== 'handled') return out;
    }
    throw new Error(`fault loop at 0x${address.toString(16)}`);
  }

  /** Whether `address` is mapped by a present PTE. */
  function present(address: number): boolean {
    const steps = mm.pgd.lookup(address);
    const last = steps[steps.length - 1];
    return last !== undefined && last.level === 1 && (last.entry & 1n) === 1n;
  }

  return { mem, env, rcu, mmu, mm, sb, task, run, makeFile, evict, mmapFile, touch, present };
}
