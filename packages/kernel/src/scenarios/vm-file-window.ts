import type { FaultHandlerFactory } from '@spf/fault-classic';
import { block, type CostModel, delay, type Kernel, WaitQueue, wake } from '@spf/machine';
import { getVma, MAP_FIXED, MAP_SHARED, PROT_READ, putVma, type VmFileRelease } from '@spf/vma';
import { O_CREAT, O_RDWR, O_TRUNC } from '../file-syscalls.js';
import { boot } from '../system.js';
import type { UserContext } from '../user-context.js';

/**
 * What runs on CPU 1 while CPU 0 unmaps the file: nothing (`idle`), or (`spec-major`) a thread that took a
 * VMA reference (`get_vma()`, as a speculative fault does in SPF v12 and the 2019 proposal) just before the
 * munmap and drops it (`put_vma()`) after one disk read of one page: a speculative `filemap_fault()` of the
 * 2019 proposal that went to the disk.
 */
export type VmFileWindowLoad = 'idle' | 'spec-major';

/** The loads of {@link measureVmFileWindow}. */
export const VM_FILE_WINDOW_LOADS: readonly VmFileWindowLoad[] = ['idle', 'spec-major'];

/** What {@link measureVmFileWindow} measured. */
export interface VmFileWindow {
  /** Simulated ns from munmap(2)'s return to the umount(2) that succeeded (rounded up to the next try). */
  readonly windowNs: number;
  /** umount(2) calls that said EBUSY meanwhile. */
  readonly busyTries: number;
}

const ADDR = 0x5000_0000;
const PAGE = 4096;
const PAGES = 16;

function* must<T>(what: string, r: Kernel<{ ok: true; value: T } | { ok: false; errno: number }>): Kernel<T> {
  const v = yield* r;
  if (!v.ok) throw new Error(`${what} failed with errno ${v.errno}`);
  return v.value;
}

/**
 * The EBUSY window of Lespinasse's question 2 (issue 14 item 4): with `vmFileRelease` = `mode`, how long a
 * file stays referenced after munmap(2) returns, i.e. how long umount(2) keeps saying EBUSY (Torvalds' 2010
 * objection to delaying the fput). Timed policy, 2 CPUs, seed 0, the given fault handler (default classic) and
 * cost-model overrides (default none).
 *
 * A process on CPU 0 maps a 16-page file shared, closes its fd (the VMA holds the file's last reference),
 * touches every page, munmaps it, then calls umount(2) in a loop (one sched_yield between tries) until it
 * succeeds; CPU 1 runs `load`. Used by `pnpm bench:vm-file-window` and @spf/bench's E2.
 */
export function measureVmFileWindow(
  mode: VmFileRelease,
  load: VmFileWindowLoad,
  opts: { readonly faultHandler?: FaultHandlerFactory; readonly cost?: Partial<CostModel> } = {},
): VmFileWindow {
  const sys = boot({
    cpus: 2,
    vmFileRelease: mode,
    checkInvariants: false,
    faultHandler: opts.faultHandler,
    cost: opts.cost,
  });
  const dev = sys.fs.device;
  const readNs = dev.latencyNs + dev.perPageNs;
  let windowNs = -1;
  let busyTries = 0;
  sys.spawnProcess('window', function* (u: UserContext) {
    const fd = yield* must('open f', u.open('f', O_RDWR | O_CREAT | O_TRUNC));
    yield* must('pwrite f', u.pwrite(fd, 0, new Uint8Array(PAGES * PAGE).fill(2)));
    yield* must('mmap f', u.mmap(ADDR, PAGES * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0));
    yield* must('close f', u.close(fd));
    for (let p = 0; p < PAGES; p++) yield* u.load8(ADDR + p * PAGE);

    if (load === 'spec-major') {
      const vma = u.process.mm.findVma(ADDR);
      if (vma === null) throw new Error('no VMA');
      let held = false;
      const q = new WaitQueue('held');
      yield* u.spawnThread(function* () {
        yield* getVma(vma);
        held = true;
        yield* wake(q);
        yield* delay(readNs, 'the speculative filemap_fault() waits for its disk read');
        yield* putVma(vma);
      }, 1);
      yield* block(q, () => held, 'held');
    }
    yield* must('munmap', u.munmap(ADDR, PAGES * PAGE));
    const t0 = yield* u.clock();
    for (;;) {
      const r = yield* u.umount();
      if (r.ok) break;
      busyTries++;
      yield* u.schedYield();
    }
    windowNs = (yield* u.clock()) - t0;
  });
  const r = sys.run();
  if (!r.ok) throw new Error(`vm_file window ${mode}/${load}: ${r.failure?.kind}: ${r.failure?.message}`);
  return { windowNs, busyTries };
}
