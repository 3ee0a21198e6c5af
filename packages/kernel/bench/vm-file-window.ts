/**
 * The EBUSY window of Lespinasse's question 2 (issue 14 item 4): for each `vmFileRelease`, how long a file
 * stays referenced after munmap(2) returns, i.e. how long umount(2) keeps saying EBUSY (Torvalds' 2010
 * objection to delaying the fput). Simulated time, timed policy, 2 CPUs, the default fault handler.
 *
 * Process on CPU 0: maps a 16-page file shared, closes its fd (the VMA holds the file's last reference),
 * touches it, munmaps it, then calls umount(2) in a loop until it succeeds; the window is the simulated
 * time from munmap's return to the umount that succeeded (each try costs one syscall, so the figure is
 * rounded up to the next try).
 *
 * Two loads for CPU 1:
 * - `idle`: nothing runs there.
 * - `spec-major`: a thread that took a VMA reference (`get_vma()`, as a speculative fault does in SPF v12
 *   and the 2019 proposal) just before the munmap and drops it (`put_vma()`) after waiting one disk read of
 *   one page (the device's latencyNs + perPageNs, default 80 µs + per page): it stands for a speculative
 *   `filemap_fault()` of the 2019 proposal that went to the disk. (A real read of another file would keep
 *   that file referenced and so hold umount off by itself; hence the fixed wait.)
 *
 * Run: cd packages/kernel && pnpm exec tsx --conditions=@spf/source bench/vm-file-window.ts
 */
import { block, delay, type Kernel, WaitQueue, wake } from '@spf/machine';
import {
  getVma,
  MAP_FIXED,
  MAP_SHARED,
  PROT_READ,
  putVma,
  VM_FILE_RELEASE_MODES,
  type VmFileRelease,
} from '@spf/vma';
import { O_CREAT, O_RDWR, O_TRUNC } from '../src/file-syscalls.js';
import { boot } from '../src/system.js';
import type { UserContext } from '../src/user-context.js';

const A = 0x5000_0000;
const P = 4096;
const PAGES = 16;

type Load = 'idle' | 'spec-major';

function* must<T>(what: string, r: Kernel<{ ok: true; value: T } | { ok: false; errno: number }>): Kernel<T> {
  const v = yield* r;
  if (!v.ok) throw new Error(`${what} failed with errno ${v.errno}`);
  return v.value;
}

/** One run: returns the window in ns and how many umount tries said EBUSY. */
function measure(mode: VmFileRelease, load: Load): { windowNs: number; busyTries: number } {
  const sys = boot({ cpus: 2, vmFileRelease: mode, checkInvariants: false });
  const dev = sys.fs.device;
  const readNs = dev.latencyNs + dev.perPageNs;
  let windowNs = -1;
  let busyTries = 0;
  sys.spawnProcess('window', function* (u: UserContext) {
    const fd = yield* must('open f', u.open('f', O_RDWR | O_CREAT | O_TRUNC));
    yield* must('pwrite f', u.pwrite(fd, 0, new Uint8Array(PAGES * P).fill(2)));
    yield* must('mmap f', u.mmap(A, PAGES * P, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0));
    yield* must('close f', u.close(fd));
    for (let p = 0; p < PAGES; p++) yield* u.load8(A + p * P);

    if (load === 'spec-major') {
      const vma = u.process.mm.findVma(A);
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
    yield* must('munmap', u.munmap(A, PAGES * P));
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
  if (!r.ok) throw new Error(`${mode}/${load}: ${r.failure?.message}`);
  return { windowNs, busyTries };
}

console.log(
  'EBUSY window after munmap returns: simulated time until umount(2) succeeds (timed policy, 2 CPUs)',
);
console.log('| vmFileRelease | CPU 1 | window (ns) | umount tries that said EBUSY |');
console.log('|---|---|---:|---:|');
for (const load of ['idle', 'spec-major'] as const) {
  for (const mode of VM_FILE_RELEASE_MODES) {
    const m = measure(mode, load);
    console.log(`| ${mode} | ${load} | ${m.windowNs} | ${m.busyTries} |`);
  }
}
