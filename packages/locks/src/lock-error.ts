import { KernelFault } from '@spf/machine';

/**
 * Misuse of a lock found by the lock itself (not by lockdep): unlocking a lock that is not held, releasing
 * a read lock nobody holds, unlocking a lock another task owns. Stops the run with kind `lock` and a
 * message naming the lock and the CPU.
 */
export class LockError extends KernelFault {
  override name = 'LockError';
  constructor(message: string) {
    super('lock', message);
  }
}
