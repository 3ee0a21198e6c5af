import type { RwSemaphore, SeqCount } from '@spf/locks';
import { activeRecorder, showValue } from '../schedule-debug.js';

/** The name of a waiter's task as student code recorded it (a machine Task, or anything else). */
function taskOf(t: unknown): string {
  return typeof t === 'object' && t !== null && 'name' in t
    ? String((t as { name: unknown }).name)
    : showValue(t);
}

/**
 * Shows an rw_semaphore in the schedule debugger (when a debug replay is active; otherwise nothing): its
 * count, who holds it (tasks whose down_read/down_write returned and who have not called up_* since) and
 * the waiters the student's paths queued.
 */
export function watchRwsem(name: string, sem: RwSemaphore): void {
  const rec = activeRecorder();
  if (rec === null) return;
  rec.watchCells({ [`${name}.count`]: sem.count });
  rec.watchLock(name, sem.count, (holders) => ({
    holders,
    waiters: Array.isArray(sem.waiters)
      ? sem.waiters.map((w) =>
          typeof w === 'object' && w !== null
            ? `${taskOf(w.task)} (${String(w.kind)}${w.granted ? ', granted' : ''})`
            : showValue(w),
        )
      : [],
  }));
}

/**
 * Shows a seqcount in the schedule debugger: its sequence, and whether a writer is inside (odd sequence).
 */
export function watchSeqcount(name: string, sc: SeqCount): void {
  const rec = activeRecorder();
  if (rec === null) return;
  rec.watchCells({ [`${name}.sequence`]: sc.sequence });
  rec.watchLock(name, sc.sequence, () => ({
    holders: sc.isWriting() ? ['a writer (the sequence is odd)'] : [],
    waiters: [],
  }));
}
