import { classicFaultHandler, type FaultHandlerFactory } from '@spf/fault-classic';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import {
  designEntry,
  FAULT_HANDLERS,
  FaultHandlerOptionError,
  faultHandlerByName,
  faultHandlerNames,
  parseSpecOptions,
  UnknownFaultHandlerError,
} from './fault-handlers.js';
import { boot } from './system.js';

describe('the fault-handler registry', () => {
  it('offers classic first, and builds it by name into a system that boots with it', () => {
    expect(faultHandlerNames()[0]).toBe('classic');
    expect(faultHandlerByName('classic')).toBe(classicFaultHandler);
    expect(boot({ faultHandler: faultHandlerByName('classic') }).faultHandler.name).toBe('classic');
  });

  it('an unknown name is a typed error that lists every known name', () => {
    const e = (() => {
      try {
        faultHandlerByName('dufuor');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(UnknownFaultHandlerError);
    expect((e as UnknownFaultHandlerError).known).toEqual(faultHandlerNames());
    expect((e as Error).message).toBe(
      `unknown fault handler "dufuor"; choose one of ${faultHandlerNames().join(', ')}`,
    );
  });

  it('classic refuses options, naming them', () => {
    expect(() => faultHandlerByName('classic', { specPgtableAlloc: true })).toThrow(
      new FaultHandlerOptionError(
        'the classic fault handler takes no options, got specPgtableAlloc; drop them or choose a speculative handler',
      ),
    );
  });

  it('designEntry hands the options to the design factory (undefined when there are none)', () => {
    const seen: unknown[] = [];
    const factory = (o?: { fast?: boolean }): FaultHandlerFactory => {
      seen.push(o);
      return classicFaultHandler;
    };
    const handlers = [...FAULT_HANDLERS, designEntry('fake', 'a test entry', factory)];
    expect(faultHandlerNames(handlers)).toEqual([...faultHandlerNames(), 'fake']);
    expect(faultHandlerByName('fake', {}, handlers)).toBe(classicFaultHandler);
    faultHandlerByName('fake', { fast: true }, handlers);
    expect(seen).toEqual([undefined, { fast: true }]);
  });

  // Picks up every design the lead registers: each must boot, handle faults with the right data, and fill
  // the reporting contract of @spf/fault-classic's FaultHandler if it is speculative.
  for (const entry of FAULT_HANDLERS) {
    it(`${entry.name}: boots with default options, maps what a program stores, and reports under its name`, () => {
      const sys = boot({ cpus: 2, faultHandler: entry.create({}) });
      expect(sys.faultHandler.name).toBe(entry.name);
      const seen: number[] = [];
      sys.spawnProcess('p', function* (u) {
        const r = yield* u.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        if (!r.ok) return;
        for (let i = 0; i < 4; i++) yield* u.store8(r.value + i * 4096, 10 + i);
        for (let i = 0; i < 4; i++) seen.push(yield* u.load8(r.value + i * 4096));
      });
      expect(sys.run().ok).toBe(true);
      expect(seen).toEqual([10, 11, 12, 13]);
      if (entry.name !== 'classic') {
        const stats = sys.faultHandler.speculativeStats?.();
        expect(stats, `${entry.name} has no speculativeStats()`).toBeDefined();
        expect(sys.faultHandler.counters, `${entry.name} has no counters`).toBeDefined();
        const aborted = Object.values(stats?.aborts ?? {}).reduce((a, b) => a + b, 0);
        expect(stats?.handled ?? 0).toBeLessThanOrEqual(stats?.attempts ?? 0);
        expect(aborted).toBeLessThanOrEqual(stats?.attempts ?? 0);
      }
    });
  }
});

describe('parseSpecOptions (--spec-option KEY=VALUE)', () => {
  it('types booleans and integers, keeps other values as strings, and nests at the first dot only', () => {
    expect(
      parseSpecOptions([
        'specPgtableAlloc=true',
        'singleThreadShortcut=false',
        'walk=rcu',
        'depth=-3',
        'checks.ptlTrylock=false',
        'checks.vmaStartWrite.mprotect=false',
      ]),
    ).toEqual({
      specPgtableAlloc: true,
      singleThreadShortcut: false,
      walk: 'rcu',
      depth: -3,
      checks: { ptlTrylock: false, 'vmaStartWrite.mprotect': false },
    });
    expect(parseSpecOptions([])).toEqual({});
  });

  it('refuses a text without =, an empty key or member, and an option given twice', () => {
    for (const [texts, message] of [
      [['specPgtableAlloc'], 'got "specPgtableAlloc"'],
      [['=true'], 'got "=true"'],
      [['checks.=false'], 'got "checks.=false"'],
      [['a=1', 'a=2'], '--spec-option a is given twice'],
      [['checks.x=true', 'checks.x=false'], '--spec-option checks.x is given twice'],
      [['checks=true', 'checks.x=false'], '--spec-option checks.x is given twice'],
    ] as const) {
      expect(() => parseSpecOptions(texts)).toThrow(FaultHandlerOptionError);
      expect(() => parseSpecOptions(texts)).toThrow(message);
    }
  });
});
