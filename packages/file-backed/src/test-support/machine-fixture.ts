import { doUserAddrFault, type FaultEnv, makeFaultEnv, TaskFaultCounters } from '@spf/fault-classic';
import { Rcu } from '@spf/locks';
import { defaultCostModel, type Kernel, Machine, now, runSync, timed } from '@spf/machine';
import { Mmu, PF_USER, PF_WRITE, PhysicalMemory } from '@spf/pagetable';
import { MAP_FIXED_NOREPLACE, MAP_PRIVATE, MmStruct, mmapSync, PagetableOps, PROT_READ } from '@spf/vma';
import type { BlockDeviceOptions } from '../block-device.js';
import type { File } from '../file.js';
import { fadviseDontneed, fileFsync, fileWrite } from '../file-ops.js';
import { filemapVmOps } from '../filemap.js';
import { SuperBlock } from '../super-block.js';
import { must } from './fixture.js';

export const BASE = 0x4000_0000;
export const P = 4096;

/**
 * A machine of `cpus` CPUs under the timed policy with one file system, a file of `npages` pages
 * (evicted: its next read comes from the device) mapped private read-only at {@link BASE}.
 */
export function makeMachineFixture(opts: {
  cpus?: number;
  npages?: number;
  device?: BlockDeviceOptions;
  dropMmapLockForIo?: boolean;
}) {
  const cpus = opts.cpus ?? 2;
  const m = new Machine({ cpus, policy: timed() });
  const mem = new PhysicalMemory({ size: 64 * 1024 * 1024, zeroPage: true });
  const env: FaultEnv = makeFaultEnv({ mem, cost: defaultCostModel });
  const rcu = new Rcu(m);
  const mmu = new Mmu(mem, { cpus });
  const mm = new MmStruct({ pageTables: PagetableOps.factory({ env, mmu }), rcu });
  const sb = new SuperBlock({ env, rcu, device: opts.device, dropMmapLockForIo: opts.dropMmapLockForIo });
  const npages = opts.npages ?? 256;
  const file: File = must(sb.open('f0', { read: true, write: true, create: true }));
  must(runSync(fileWrite(file, 0, new Uint8Array(npages * P).fill(0x42))));
  must(runSync(fileFsync(file)));
  must(runSync(fadviseDontneed(file, 0, 0)));
  must(
    mmapSync(mm, {
      addr: BASE,
      len: npages * P,
      prot: PROT_READ,
      flags: MAP_PRIVATE | MAP_FIXED_NOREPLACE,
      file: { file, ops: filemapVmOps, readable: true, writable: true },
    }),
  );
  const task = new TaskFaultCounters();
  /** One user fault at `address` (kernel code): returns its outcome kind and the simulated ns it took. */
  function* fault(address: number, write = false): Kernel<{ kind: string; ns: number }> {
    const t0 = yield* now();
    const out = yield* doUserAddrFault(env, {
      mm,
      address,
      errorCode: PF_USER | (write ? PF_WRITE : 0),
      task,
    });
    return { kind: out.kind, ns: (yield* now()) - t0 };
  }
  return { m, mem, env, rcu, mm, sb, file, task, fault };
}
