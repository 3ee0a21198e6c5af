import { ptePfn } from '@spf/pagetable';
import { MM_ANONPAGES, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { wpPageShared } from './do-wp-page.js';
import { makeFaultEnv } from './fault-env.js';
import { VM_FAULT_SIGBUS } from './fault-flags.js';
import type { FaultEnv } from './fault-env.js';
import type { FaultHandler } from './fault-handler.js';
import { builtinPteFaultPaths, type PteFaultPaths, withPteFaultPaths } from './pte-fault-paths.js';
import { makeFixture } from './test-support/fixture.js';

const A = 0x1000_0000;

/** Paths that record each call and then run the package's own. */
function recording(calls: string[]): PteFaultPaths {
  return {
    *doAnonymousPage(vmf) {
      calls.push(`anon ${(vmf.address >>> 0).toString(16)}`);
      return yield* builtinPteFaultPaths.doAnonymousPage(vmf);
    },
    *doWpPage(vmf) {
      calls.push(`wp ${(vmf.address >>> 0).toString(16)}`);
      return yield* builtinPteFaultPaths.doWpPage(vmf);
    },
  };
}

describe('the pteFaultPaths injection point', () => {
  it('handle_pte_fault runs the injected do_anonymous_page and do_wp_page', () => {
    const calls: string[] = [];
    const fx = makeFixture({ pteFaultPaths: recording(calls) });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'r')).toMatchObject({ ok: true, value: 0 });
    expect(ptePfn(fx.pte(A))).toBe(fx.mem.zeroPfn);
    expect(fx.touch(A, 'w', 9)).toMatchObject({ ok: true, faults: 1 });
    expect(fx.touch(A, 'r')).toMatchObject({ value: 9 });
    expect(calls).toEqual(['anon 10000000', 'wp 10000000']);
    expect(fx.mm.rss[MM_ANONPAGES]).toBe(1);
    expect(fx.invariantProblems()).toEqual([]);
  });

  it('what the injected path returns is what the fault does (a SIGBUS here)', () => {
    const paths: PteFaultPaths = {
      *doAnonymousPage() {
        return VM_FAULT_SIGBUS;
      },
      doWpPage: builtinPteFaultPaths.doWpPage,
    };
    const fx = makeFixture({ pteFaultPaths: paths });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    expect(fx.touch(A, 'w')).toMatchObject({ kind: 'sigbus' });
  });

  it('withPteFaultPaths hands the factory the system environment with the paths set', () => {
    const fx = makeFixture();
    let seen: FaultEnv | null = null;
    const factory = (env: FaultEnv): FaultHandler => {
      seen = env;
      return { name: 'probe', handleUserFault: () => null as never };
    };
    const paths = recording([]);
    withPteFaultPaths(factory, paths)(fx.env);
    const env = seen as FaultEnv | null;
    expect(env?.pteFaultPaths).toBe(paths);
    expect(env?.mem).toBe(fx.env.mem);
    expect(env?.vmstat).toBe(fx.env.vmstat);
    expect(fx.env.pteFaultPaths).toBeUndefined();
    expect(makeFaultEnv({ mem: fx.mem, cost: fx.env.cost }).pteFaultPaths).toBeUndefined();
  });
});

describe('wpPageShared', () => {
  it('refuses a private mapping: that half of do_wp_page reuses or copies', () => {
    const paths: PteFaultPaths = {
      doAnonymousPage: builtinPteFaultPaths.doAnonymousPage,
      *doWpPage(vmf) {
        return yield* wpPageShared(vmf, null);
      },
    };
    const fx = makeFixture({ pteFaultPaths: paths });
    fx.mmapAnon(A, 1, PROT_READ | PROT_WRITE);
    fx.touch(A, 'r');
    expect(() => fx.touch(A, 'w')).toThrow(/wpPageShared\(\) on a private mapping/);
  });
});
