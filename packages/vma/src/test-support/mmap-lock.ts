import { type Kernel, runSync } from '@spf/machine';
import type { MmStruct } from '../mm-struct.js';

/** Runs `body` synchronously with `mm`'s mmap lock held for writing (as a syscall would). */
export function withWriteLock<T>(mm: MmStruct, body: () => Kernel<T>): T {
  return runSync(
    (function* () {
      yield* mm.mmapWriteLock();
      try {
        return yield* body();
      } finally {
        yield* mm.mmapWriteUnlock();
      }
    })(),
  );
}

/** Runs `body` synchronously with `mm`'s mmap lock held for reading (as the fault path does). */
export function withReadLock<T>(mm: MmStruct, body: () => Kernel<T>): T {
  return runSync(
    (function* () {
      yield* mm.mmapReadLock();
      try {
        return yield* body();
      } finally {
        yield* mm.mmapReadUnlock();
      }
    })(),
  );
}
