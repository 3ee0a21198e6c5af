import { faultHandlerByName, measureVmFileWindow, type VmFileWindowLoad } from '@spf/kernel';
import { VM_FILE_RELEASE_MODES } from '@spf/vma';
import {
  type BaseParams,
  checkInt,
  type Workload,
  type WorkloadResult,
  WorkloadConfigError,
} from '../workload.js';

/** Options of {@link vmFileWindow}. */
export interface VmFileWindowParams extends BaseParams {
  /** What CPU 1 does meanwhile: nothing, or hold a VMA reference across one disk read (a speculative fault). */
  readonly load: VmFileWindowLoad;
}

/**
 * The umount-EBUSY window of question 2: how long a file stays referenced after munmap(2) returns, under the
 * boot's `vmFileRelease` (`params.vmFileRelease`, default `removeVma`) and fault handler. It runs
 * @spf/kernel's `measureVmFileWindow()` (the measurement of `pnpm bench:vm-file-window`), which is
 * deterministic: 2 CPUs, machine seed 0 whatever `params.seed` says.
 */
export const vmFileWindow: Workload<VmFileWindowParams> = {
  name: 'vm_file_window',
  models:
    "the umount EBUSY window of question 2 (Torvalds' 2010 objection to a delayed fput): time from munmap's return until umount(2) succeeds, idle or with a speculative fault holding the VMA across a disk read",
  simplifies:
    "@spf/kernel's measureVmFileWindow(): a 16-page shared file mapping, umount retried with sched_yield between tries; the speculative fault is a thread holding get_vma() for one disk read; 2 CPUs, seed 0",
  run(p): WorkloadResult {
    checkInt('vm_file_window cpus', p.cpus, 2, 2);
    if (p.load !== 'idle' && p.load !== 'spec-major') {
      throw new WorkloadConfigError(
        `vm_file_window load must be idle or spec-major, got ${JSON.stringify(p.load)}`,
      );
    }
    const mode = p.vmFileRelease ?? 'removeVma';
    if (!VM_FILE_RELEASE_MODES.includes(mode)) {
      throw new WorkloadConfigError(
        `vm_file_window vmFileRelease must be one of ${VM_FILE_RELEASE_MODES.join(', ')}, got ${JSON.stringify(mode)}`,
      );
    }
    const w = measureVmFileWindow(mode, p.load, {
      faultHandler: faultHandlerByName(p.handler, p.handlerOptions ?? {}),
      cost: p.cost,
    });
    return {
      score: w.windowNs,
      unit: 'ns',
      simNs: w.windowNs,
      faults: 0,
      speculativeShare: 0,
      aborts: {},
      extra: { busyTries: w.busyTries },
    };
  },
};
