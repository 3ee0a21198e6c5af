import { Cell, delay, kassert, Machine, runSync, type Scenario } from '@spf/machine';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SeqcountReadSide } from './seqcount-read-side.js';
import { defaultLockdep } from './lockdep.js';
import { SeqCount, seqcountReadSide } from './seqcount.js';
import { SeqLock } from './seqlock.js';
import { noRetrySeqcountReader } from './test-support/broken.js';
import { expectCaught, exploreAll } from './test-support/expect-caught.js';

beforeEach(() => defaultLockdep.reset());

/**
 * A writer updates (a, b) together, keeping a === b, under a seqlock; a reader reads them in a retry
 * loop and must never accept a torn pair. The reader is CPU 0 so that dfs, which starts with CPU 0, backtracks
 * over the reader's steps without wading through spin iterations first.
 */
function pair(reader: SeqcountReadSide | undefined, writes = 2): Scenario {
  return {
    cpus: 2,
    setup(m) {
      const sl = new SeqLock('vma');
      if (reader)
        (sl as { seqcount: SeqCount }).seqcount = new SeqCount('vma', { reader, line: sl.lock.line });
      const a = new Cell(0, 'vm_start');
      const b = new Cell(0, a.line);
      m.spawn(1, 'writer', function* () {
        for (let k = 1; k <= writes; k++) {
          yield* sl.writeSeqlock();
          yield* a.store(k);
          yield* b.store(k);
          yield* sl.writeSequnlock();
        }
      });
      m.spawn(0, 'reader', function* () {
        for (let k = 0; k < 2; k++) {
          let x: number;
          let y: number;
          let seq: number;
          do {
            seq = yield* sl.readSeqbegin();
            x = yield* a.load();
            y = yield* b.load();
          } while (yield* sl.readSeqretry(seq));
          kassert(x === y, `reader accepted a torn pair (${x}, ${y})`);
        }
      });
    },
  };
}

describe('SeqCount and SeqLock', () => {
  it('readers never accept a torn update (random, pct, dfs)', () => {
    exploreAll(pair(undefined), 'readers never accept a torn update (random, pct, dfs)');
  });

  it('the reference read side is correct under the explorer, routed through the reader option', () => {
    let calls = 0;
    const counted: SeqcountReadSide = {
      *readBegin(s) {
        calls++;
        return yield* seqcountReadSide.readBegin(s);
      },
      readRetry: seqcountReadSide.readRetry,
    };
    exploreAll(
      pair(counted),
      'the reference read side is correct under the explorer, routed through the reader option',
    );
    expect(calls).toBeGreaterThan(0);
  });

  it('catches the broken reader that never retries', () => {
    for (const opts of [
      { policy: 'random', runs: 300, seed: 2 },
      { policy: 'pct', runs: 300, seed: 2 },
      { policy: 'dfs', bound: 2, runs: 5000 },
    ] as const) {
      const f = expectCaught(pair(noRetrySeqcountReader, 1), opts, 'assertion');
      expect(f.message).toMatch(/torn pair/);
    }
  });

  it('readBegin waits for an even sequence; retry sees a writer', () => {
    const s = new SeqCount('s');
    const start = runSync(s.readBegin());
    expect(start).toBe(0);
    runSync(s.writeBegin());
    expect(s.isWriting()).toBe(true);
    expect(runSync(s.rawReadSeqcount())).toBe(1);
    runSync(s.writeEnd());
    expect(runSync(s.readRetry(start))).toBe(true);
    expect(runSync(s.readRetry(2))).toBe(false);
  });

  it('reports write_seqcount_end without begin and nested write sections', () => {
    const s = new SeqCount('vm_sequence');
    expect(() => runSync(s.writeEnd())).toThrow(
      /write_seqcount_end on 'vm_sequence' without write_seqcount_begin/,
    );
    runSync(s.writeBegin());
    expect(() => runSync(s.writeBegin())).toThrow(/while another write section is open/);
  });

  it('a reader spins while a writer is inside (timed)', () => {
    const m = new Machine({ cpus: 2 });
    const s = new SeqCount('s');
    let got = -1;
    m.spawn(0, 'w', function* () {
      yield* s.writeBegin();
      yield* delay(1000);
      yield* s.writeEnd();
    });
    m.spawn(1, 'r', function* () {
      yield* delay(10);
      got = yield* s.readBegin();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(got).toBe(2);
    expect(r.clocks[1]).toBeGreaterThan(1000);
  });
});
