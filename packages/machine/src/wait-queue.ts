import type { Task } from './task.js';

/**
 * A wait queue (`wait_queue_head_t`): tasks sleep on it with {@link block} and are woken in FIFO order by
 * {@link wake}. Locks built on it set {@link WaitQueue.describe} so that a deadlock report can say who
 * holds what the sleepers wait for.
 */
export class WaitQueue {
  /** Sleeping tasks, oldest first. */
  readonly sleepers: Task[] = [];
  /** Optional description of the resource's holders, used in deadlock reports. */
  describe: (() => string) | undefined;
  constructor(readonly label: string) {}
}
