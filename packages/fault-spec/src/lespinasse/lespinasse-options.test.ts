import { makeFaultEnv } from '@spf/fault-classic';
import { defaultCostModel } from '@spf/machine';
import { PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { FaultSpecConfigError } from '../fault-spec-config-error.js';
import { LESPINASSE_CHECKS, type LespinasseOptions, resolveLespinasseOptions } from './lespinasse-options.js';
import { lespinasseSpf } from './lespinasse-spf.js';

function env(free: { freePgtablesUnderPtl?: boolean; pgtableFreeRcu?: boolean } = {}) {
  return makeFaultEnv({ mem: new PhysicalMemory({ size: 1 << 20 }), cost: defaultCostModel, ...free });
}

function refusal(options: unknown, e = env()): FaultSpecConfigError {
  try {
    lespinasseSpf(options as LespinasseOptions)(e);
  } catch (err) {
    expect(err).toBeInstanceOf(FaultSpecConfigError);
    return err as FaultSpecConfigError;
  }
  throw new Error('the options were accepted');
}

describe('lespinasseSpf options', () => {
  it('defaults: every check on, the walk guard matched to how tables are freed, no page-table allocation', () => {
    const ipi = resolveLespinasseOptions(env());
    expect(Object.values(ipi.checks).every((v) => v)).toBe(true);
    expect(Object.keys(ipi.checks).sort()).toEqual(Object.keys(LESPINASSE_CHECKS).sort());
    expect(ipi.pageWalk).toBe('irqoff');
    expect(ipi.specPgtableAlloc).toBe(false);
    expect(ipi.singleThreadShortcut).toBe(false);
    expect(resolveLespinasseOptions(env({ pgtableFreeRcu: true })).pageWalk).toBe('rcu');
    const h = lespinasseSpf()(env());
    expect(h.name).toBe('lespinasse');
    expect(h.speculativeStats?.()).toMatchObject({ attempts: 0, handled: 0 });
  });

  it("refuses pageWalk: 'rcu' when page tables are freed right after the shootdown, and says what to change", () => {
    const e = refusal({ pageWalk: 'rcu' });
    expect(e.handler).toBe('lespinasse');
    expect(e.message).toMatch(/pageWalk: 'rcu'/);
    expect(e.message).toMatch(/pgtableFreeRcu/);
    // Both guards are safe when tables are freed by RCU after the shootdown (the IPI still waits for irq-off walks).
    expect(resolveLespinasseOptions(env({ pgtableFreeRcu: true }), { pageWalk: 'irqoff' }).pageWalk).toBe(
      'irqoff',
    );
  });

  it('refuses specPgtableAlloc unless page tables are freed under page_table_lock', () => {
    const e = refusal({ specPgtableAlloc: true });
    expect(e.message).toMatch(/specPgtableAlloc: true/);
    expect(e.message).toMatch(/freePgtablesUnderPtl/);
    expect(
      resolveLespinasseOptions(env({ freePgtablesUnderPtl: true }), { specPgtableAlloc: true })
        .specPgtableAlloc,
    ).toBe(true);
  });

  it('refuses unknown options and checks, and values of the wrong type, naming them', () => {
    expect(refusal({ pageWalks: 'rcu' }).options).toEqual(['pageWalks']);
    expect(refusal({ checks: { pmdsame: false } }).message).toMatch(
      /checks\.pmdsame.*unknown check.*pmdSame/,
    );
    expect(refusal({ checks: { pmdSame: 0 } }).options).toEqual(['checks.pmdSame']);
    expect(refusal({ pageWalk: 'irq' }).message).toMatch(/'irqoff' or 'rcu'/);
    expect(refusal({ specPgtableAlloc: 'yes' }).options).toEqual(['specPgtableAlloc']);
    expect(refusal(null).options).toEqual(['options']);
    expect(refusal({ checks: 3 }).options).toEqual(['checks']);
    expect(refusal({ fileVmas: 1 }).options).toEqual(['fileVmas']);
  });

  it('fileVmas is on by default, as the 2021 RFC posted it, and asks every mm for an RCU-deferred fput of vm_file', () => {
    expect(resolveLespinasseOptions(env()).fileVmas).toBe(true);
    expect(lespinasseSpf()(env()).mmConfig).toEqual({ vmFileRelease: 'rcu' });
    // The 2022 series (anonymous VMAs only), and the unsafe experiment, ask for nothing.
    expect(lespinasseSpf({ fileVmas: false })(env()).mmConfig).toEqual({});
    expect(lespinasseSpf({ checks: { vmFileLifetime: false } })(env()).mmConfig).toEqual({});
  });
});
