import { delay, Machine, MemoryLine, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { SeqCount } from './seqcount.js';
import { noRetrySeqcountReader } from './test-support/broken.js';

/** seqcount_t's rules one call at a time (include/linux/seqlock.h). */
describe('seqcount_t rules', () => {
  it('each write section adds exactly two: odd inside, even after', () => {
    const s = new SeqCount('s');
    for (let i = 0; i < 3; i++) {
      expect(s.isWriting()).toBe(false);
      runSync(s.writeBegin());
      expect(s.sequence.value).toBe(2 * i + 1);
      expect(s.isWriting()).toBe(true);
      runSync(s.writeEnd());
      expect(s.sequence.value).toBe(2 * i + 2);
    }
  });

  it('a section that began before a write must retry; one that began after need not', () => {
    const s = new SeqCount('s');
    const before = runSync(s.readBegin());
    runSync(s.writeBegin());
    runSync(s.writeEnd());
    expect(runSync(s.readRetry(before))).toBe(true);
    const after = runSync(s.readBegin());
    expect(after).toBe(2);
    expect(runSync(s.readRetry(after))).toBe(false);
  });

  it('raw_write_seqcount_barrier invalidates readers without leaving a section open', () => {
    const s = new SeqCount('s');
    const start = runSync(s.readBegin());
    runSync(s.rawWriteSeqcountBarrier());
    expect(s.sequence.value).toBe(2);
    expect(s.isWriting()).toBe(false);
    expect(runSync(s.rawReadRetry(start))).toBe(true);
  });

  it('raw_read_seqcount returns an odd sequence without waiting for the writer', () => {
    const s = new SeqCount('s');
    runSync(s.writeBegin());
    expect(runSync(s.rawReadSeqcount())).toBe(1);
  });

  it('the raw reads keep the kernel semantics even when the reader option is a broken lab solution', () => {
    const s = new SeqCount('s', { reader: noRetrySeqcountReader });
    const start = runSync(s.rawReadBegin());
    runSync(s.writeBegin());
    runSync(s.writeEnd());
    expect(runSync(s.readRetry(start))).toBe(false); // the broken reader, through the option
    expect(runSync(s.rawReadRetry(start))).toBe(true); // the kernel's
  });

  it('a refused write_seqcount_begin or _end leaves the sequence as it was, and the message gives it', () => {
    const s = new SeqCount('vm_sequence');
    expect(() => runSync(s.writeEnd())).toThrow(/\(sequence 0 is even\)/);
    expect(s.sequence.value).toBe(0);
    runSync(s.writeBegin());
    expect(() => runSync(s.writeBegin())).toThrow(
      /'vm_sequence' while another write section is open \(sequence 1\)/,
    );
    expect(s.sequence.value).toBe(1);
  });

  it('the line option puts the sequence on a given line (a field of a larger struct)', () => {
    const line = new MemoryLine('vma');
    expect(new SeqCount('vm_sequence', { line }).line).toBe(line);
    expect(new SeqCount('alone').line.label).toBe('alone');
  });

  it('raw_read_seqcount_begin waits for the writer to leave, spinning as "<name> (read_seqcount_begin)", and returns the even sequence', () => {
    const m = new Machine({ cpus: 2, trace: true });
    const s = new SeqCount('vm_sequence', { reader: noRetrySeqcountReader });
    let seen = -1;
    m.spawn(0, 'writer', function* () {
      yield* s.writeBegin();
      yield* delay(2_000);
      yield* s.writeEnd();
    });
    m.spawn(1, 'reader', function* () {
      yield* delay(100);
      seen = yield* s.rawReadBegin();
    });
    const r = m.run();
    expect(r.failure).toBeNull();
    expect(seen).toBe(2);
    const spins = r.trace!.filter((e) => e.task === 'reader' && e.kind === 'spin');
    expect(spins.length).toBeGreaterThan(0);
    expect(new Set(spins.map((e) => e.label))).toEqual(new Set(['vm_sequence (read_seqcount_begin)']));
  });
});
