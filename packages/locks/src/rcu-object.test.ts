import { Machine, MemoryLine, runSync, UseAfterFreeError } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { RcuBox, RcuObject } from './rcu-object.js';

/** Runs `body` on a one-CPU traced machine and returns the run's failure and its memory events. */
function run(body: () => Generator<unknown, void, unknown>) {
  const m = new Machine({ cpus: 1, trace: true });
  m.spawn(0, 't', body as never);
  const r = m.run();
  const events = (r.trace ?? []).filter((e) => e.kind === 'read' || e.kind === 'write');
  return { failure: r.failure, events: events.map((e) => `${e.kind} ${e.label}`) };
}

describe('RcuObject', () => {
  it('is alive until poisoned, then remembers who freed it', () => {
    const o = new RcuObject('vma');
    expect(o.isPoisoned).toBe(false);
    expect(o.poisonReason).toBeNull();
    expect(() => o.checkAlive()).not.toThrow();
    o.poison('kfree_rcu after a grace period');
    expect(o.isPoisoned).toBe(true);
    expect(o.poisonReason).toBe('kfree_rcu after a grace period');
  });

  it('reports an access after the free, saying what was accessed and who freed it', () => {
    const o = new RcuObject('anon_vma');
    o.poison('put_anon_vma');
    expect(() => o.checkAlive()).toThrow(UseAfterFreeError);
    expect(() => o.checkAlive()).toThrow(
      "access of 'anon_vma' after it was freed (put_anon_vma); a reader used it past rcu_read_unlock, or it was freed without waiting for a grace period",
    );
    expect(() => o.checkAlive('vm_start read')).toThrow(/^vm_start read of 'anon_vma' after it was freed/);
  });

  it('reports a double free naming both frees, and keeps the first', () => {
    const o = new RcuObject('file');
    o.poison('fput');
    expect(() => o.poison('fput again')).toThrow(UseAfterFreeError);
    expect(() => o.poison('second')).toThrow(
      "double free of 'file': already freed (fput), freed again (second)",
    );
    expect(o.poisonReason).toBe('fput');
  });

  it('touch() is a read of its line, checked at the time of the access', () => {
    const shared = new MemoryLine('mm->mmap');
    const a = new RcuObject('a', shared);
    const b = new RcuObject('b');
    expect(a.line).toBe(shared);
    expect(b.line.label).toBe('b');
    const ok = run(function* () {
      yield* a.touch();
      yield* b.touch('use');
    });
    expect(ok.failure).toBeNull();
    expect(ok.events).toEqual(['read mm->mmap', 'read b']);

    b.poison('kfree');
    const bad = run(function* () {
      yield* a.touch();
      yield* b.touch();
    });
    expect(bad.failure?.kind).toBe('use-after-free');
    expect(bad.failure?.message).toMatch(/^read of 'b' after it was freed \(kfree\)/);
    // The failed access was performed (it is in the trace) before the check stopped the run.
    expect(bad.events).toEqual(['read mm->mmap', 'read b']);
    expect(() => runSync(b.touch('walk'))).toThrow(/^walk of 'b' after it was freed/);
  });
});

describe('RcuBox', () => {
  it('reads and writes its value with a read or write of its line', () => {
    const box = new RcuBox(1, 'vma');
    const seen: number[] = [];
    const r = run(function* () {
      seen.push(yield* box.get());
      yield* box.set(2);
      seen.push(yield* box.get());
    });
    expect(r.failure).toBeNull();
    expect(seen).toEqual([1, 2]);
    expect(box.peek()).toBe(2);
    expect(r.events).toEqual(['read vma', 'write vma', 'read vma']);
  });

  it('stops a read or a write after the free, and a write after the free changes nothing', () => {
    const box = new RcuBox('old', 'vma');
    box.poison('vm_area_free');
    const read = run(function* () {
      yield* box.get();
    });
    expect(read.failure?.kind).toBe('use-after-free');
    expect(read.failure?.message).toMatch(/^read of 'vma' after it was freed \(vm_area_free\)/);
    const write = run(function* () {
      yield* box.set('new');
    });
    expect(write.failure?.kind).toBe('use-after-free');
    expect(write.failure?.message).toMatch(/^write of 'vma' after it was freed \(vm_area_free\)/);
    expect(write.events).toEqual(['write vma']);
    expect(box.peek()).toBe('old');
  });
});
