/**
 * The EBUSY window of Lespinasse's question 2 (issue 14 item 4): for each `vmFileRelease`, how long a file
 * stays referenced after munmap(2) returns, i.e. how long umount(2) keeps saying EBUSY (Torvalds' 2010
 * objection to delaying the fput). Simulated time, timed policy, 2 CPUs, the default fault handler. The
 * measurement is `measureVmFileWindow()` (src/scenarios/vm-file-window.ts, which documents the two loads);
 * @spf/bench's E2 runs the same function under each design.
 *
 * Run: cd packages/kernel && pnpm exec tsx --conditions=@spf/source bench/vm-file-window.ts
 */
import { VM_FILE_RELEASE_MODES } from '@spf/vma';
import { measureVmFileWindow, VM_FILE_WINDOW_LOADS } from '../src/scenarios/vm-file-window.js';

console.log(
  'EBUSY window after munmap returns: simulated time until umount(2) succeeds (timed policy, 2 CPUs)',
);
console.log('| vmFileRelease | CPU 1 | window (ns) | umount tries that said EBUSY |');
console.log('|---|---|---:|---:|');
for (const load of VM_FILE_WINDOW_LOADS) {
  for (const mode of VM_FILE_RELEASE_MODES) {
    const m = measureVmFileWindow(mode, load);
    console.log(`| ${mode} | ${load} | ${m.windowNs} | ${m.busyTries} |`);
  }
}
