import type { BaseParams, Workload } from '../workload.js';
import { appLaunch } from './app-launch.js';
import { ebizzy } from './ebizzy.js';
import { gupReader } from './gup-reader.js';
import { kernbench } from './kernbench.js';
import { malloc1 } from './malloc1.js';
import { pageFault1 } from './page-fault1.js';
import { pageFault2 } from './page-fault2.js';
import { pageFault3 } from './page-fault3.js';
import { pageFault4 } from './page-fault4.js';
import { pft } from './pft.js';
import { retry2010 } from './retry2010.js';
import { sparseTouch } from './sparse-touch.js';
import { vmFileWindow } from './vm-file-window.js';

export { appLaunch, type AppLaunchParams } from './app-launch.js';
export { ebizzy, type EbizzyParams } from './ebizzy.js';
export { gupReader, type GupReaderParams } from './gup-reader.js';
export { kernbench, type KernbenchParams } from './kernbench.js';
export { malloc1, type Malloc1Params } from './malloc1.js';
export type { FileFaultParams } from './file-fault-loop.js';
export { pageFault1, type PageFault1Params } from './page-fault1.js';
export { pageFault2, type PageFault2Params } from './page-fault2.js';
export { pageFault3, type PageFault3Params } from './page-fault3.js';
export { pageFault4, type PageFault4Params } from './page-fault4.js';
export { pft, type PftParams } from './pft.js';
export { retry2010, type Retry2010Params } from './retry2010.js';
export { sparseTouch, type SparseTouchParams } from './sparse-touch.js';
export { vmFileWindow, type VmFileWindowParams } from './vm-file-window.js';

/** Every workload by name. A new workload joins this list with one import and one entry. */
export const WORKLOADS: readonly Workload<BaseParams>[] = [
  pageFault1,
  malloc1,
  pft,
  ebizzy,
  kernbench,
  appLaunch,
  gupReader,
  sparseTouch,
  retry2010,
  pageFault2,
  pageFault3,
  pageFault4,
  vmFileWindow,
] as unknown as readonly Workload<BaseParams>[];

/** A workload name that is not in {@link WORKLOADS}. */
export class UnknownWorkloadError extends Error {
  override readonly name = 'UnknownWorkloadError';
}

/** The workload called `name`. */
export function workloadByName(name: string): Workload<BaseParams> {
  const w = WORKLOADS.find((x) => x.name === name);
  if (w === undefined) {
    throw new UnknownWorkloadError(
      `unknown workload ${JSON.stringify(name)}; choose one of ${WORKLOADS.map((x) => x.name).join(', ')}`,
    );
  }
  return w;
}
