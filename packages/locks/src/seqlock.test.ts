import { Machine, runSync } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import { current, irqsEnabled } from './current.js';
import { defaultLockdep, Lockdep } from './lockdep.js';
import { SeqLock } from './seqlock.js';

beforeEach(() => defaultLockdep.reset());

/** seqlock_t: a seqcount whose writers hold a spinlock (include/linux/seqlock.h). */
describe('SeqLock', () => {
  it('write_seqlock takes the spinlock and opens the section; write_sequnlock closes both', () => {
    const s = new SeqLock('jiffies_lock');
    runSync(s.writeSeqlock());
    expect(s.lock.isLocked()).toBe(true);
    expect(s.seqcount.isWriting()).toBe(true);
    runSync(s.writeSequnlock());
    expect(s.lock.isLocked()).toBe(false);
    expect(s.seqcount.isWriting()).toBe(false);
    expect(s.seqcount.sequence.value).toBe(2);
  });

  it('the sequence shares the spinlock line, as in the kernel struct', () => {
    const s = new SeqLock('x');
    expect(s.seqcount.line).toBe(s.lock.line);
  });

  it('a reader that raced with a writer must retry; one after it need not', () => {
    const s = new SeqLock('x');
    const start = runSync(s.readSeqbegin());
    runSync(s.writeSeqlock());
    runSync(s.writeSequnlock());
    expect(runSync(s.readSeqretry(start))).toBe(true);
    expect(runSync(s.readSeqretry(runSync(s.readSeqbegin())))).toBe(false);
  });

  it('the irqsave forms disable interrupts inside and restore them after', () => {
    const m = new Machine({ cpus: 1 });
    const s = new SeqLock('x');
    const seen: boolean[] = [];
    m.spawn(0, 'w', function* () {
      const flags = yield* s.writeSeqlockIrqsave();
      seen.push(flags, yield* irqsEnabled(), s.seqcount.isWriting());
      yield* s.writeSequnlockIrqrestore(flags);
      seen.push(yield* irqsEnabled(), s.lock.isLocked());
    });
    expect(m.run().failure).toBeNull();
    expect(seen).toEqual([true, false, true, true, false]);
  });

  it('the writers’ spinlock is named after the seqlock and reports to the validator given, or to none', () => {
    const own = new Lockdep();
    const held: Record<string, readonly string[]> = {};
    const m = new Machine({ cpus: 1 });
    const cases = { default: {}, own: { lockdep: own }, none: { lockdep: false } } as const;
    m.spawn(0, 'w', function* () {
      for (const [k, opts] of Object.entries(cases)) {
        const s = new SeqLock('jiffies_lock', opts);
        yield* s.writeSeqlock();
        const c = yield* current();
        held[k] = [...defaultLockdep.heldBy(c), ...own.heldBy(c).map((n) => `own:${n}`)];
        yield* s.writeSequnlock();
      }
    });
    expect(m.run().failure).toBeNull();
    expect(held).toEqual({ default: ['jiffies_lock.lock'], own: ['own:jiffies_lock.lock'], none: [] });
  });
});
