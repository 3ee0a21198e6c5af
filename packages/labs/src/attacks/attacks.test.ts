import { describe, expect, it } from 'vitest';
import { gradeSources } from '../grade.js';
import { lab1 } from '../lab1/lab1.js';
import { lab2 } from '../lab2/lab2.js';
import { lab3 } from '../lab3/lab3.js';
import { lab4 } from '../lab4/lab4.js';
import { lab6 } from '../lab6/lab6.js';
import { referenceSources } from '../reference-solutions.js';

// Attacks on the grader by a student file, run in-process (the same pipeline as the browser worker and
// the sandboxed Node child). Each must leave the student with no points for work they did not do. The
// attacks that need the whole CLI (a forged report to the parent, files and commands) are in
// cli/grade.test.ts.

describe('answers are not importable', () => {
  it('re-exporting @spf/pagetable’s referenceWalk as the Lab 1 walk scores nothing', async () => {
    const r = await gradeSources(lab1, {
      'walk.ts': "export { referenceWalk as walk } from '@spf/pagetable';\n",
    });
    expect(r.score).toBe(0);
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toContain("'referenceWalk'");
  });

  it('re-exporting @spf/locks’ own seqcount read side and rwsem paths as Lab 2 scores nothing', async () => {
    const r = await gradeSources(lab2, {
      'seqcount.ts': "export { seqcountReadSide } from '@spf/locks';\n",
      'rwsem.ts': "export { simpleRwsemPaths as rwsemPaths } from '@spf/locks';\n",
    });
    expect(r.score).toBe(0);
  });

  it('Lab 2 paths that call back into the lock they were handed (its built-in paths) score nothing', async () => {
    const sources = referenceSources(lab2);
    const r = await gradeSources(lab2, {
      'seqcount.ts': [
        'export const seqcountReadSide = {',
        '  *readBegin(s: any) { return yield* s.rawReadBegin(); },',
        '  *readRetry(s: any, start: number) { return yield* s.rawReadRetry(start); },',
        '};',
      ].join('\n'),
      'rwsem.ts': sources['rwsem.ts'],
    });
    const seq = r.results.filter((t) => t.id.startsWith('seq'));
    expect(seq.length).toBeGreaterThan(0);
    expect(seq.every((t) => t.points === 0)).toBe(true);
  });
});

describe('Lab 3: @spf/fault-classic gives helpers, never its own do_anonymous_page or do_wp_page', () => {
  it.each([
    ['doAnonymousPage', "export { doAnonymousPage } from '@spf/fault-classic';"],
    [
      'builtinPteFaultPaths',
      "import { builtinPteFaultPaths } from '@spf/fault-classic';\nexport const doAnonymousPage = builtinPteFaultPaths.doAnonymousPage;",
    ],
    [
      'handlePteFault',
      "import { handlePteFault } from '@spf/fault-classic';\nexport const doAnonymousPage = handlePteFault;",
    ],
  ])('importing %s refuses to load', async (name, text) => {
    const r = await gradeSources(lab3, {
      'do-anonymous-page.ts': text,
      'do-wp-page.ts': "export { wpPageReuse as doWpPage } from '@spf/fault-classic';\n",
    });
    expect(r.score).toBe(0);
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toMatch(/'(doAnonymousPage|builtinPteFaultPaths|handlePteFault|wpPageReuse)'/);
    void name;
  });

  it('wpPageShared cannot stand in for the private half (reuse) of do_wp_page', async () => {
    const ref = referenceSources(lab3);
    const r = await gradeSources(lab3, {
      'do-anonymous-page.ts': ref['do-anonymous-page.ts'],
      'do-wp-page.ts': [
        "import { type ClassicVmFault, wpPageShared } from '@spf/fault-classic';",
        "import { vmNormalPage } from '@spf/vma';",
        'export function* doWpPage(vmf: ClassicVmFault) {',
        '  return yield* wpPageShared(vmf, vmNormalPage(vmf.env, vmf.vma, vmf.address, vmf.origPte));',
        '}',
      ].join('\n'),
    });
    const wp = r.results.find((t) => t.id === 'write-after-read');
    expect(wp?.status).toBe('fail');
    expect(wp?.message).toMatch(/wpPageShared\(\) on a private mapping/);
  });
});

describe('Lab 4: @spf/fault-spec gives helpers, never its own speculative attempt', () => {
  it.each([
    ['handleSpeculativeFault', "export { handleSpeculativeFault } from '@spf/fault-spec';"],
    [
      'dufourPteMapLock',
      "import { dufourPteMapLock } from '@spf/fault-spec';\nexport const handleSpeculativeFault = dufourPteMapLock;",
    ],
    [
      'speculativeWalk',
      "import { speculativeWalk } from '@spf/fault-spec';\nexport const handleSpeculativeFault = speculativeWalk;",
    ],
    [
      'dufourSpf',
      "import { dufourSpf } from '@spf/fault-spec';\nexport const handleSpeculativeFault = dufourSpf;",
    ],
  ])('importing %s refuses to load', async (name, text) => {
    const r = await gradeSources(lab4, { 'speculative-fault.ts': text });
    expect(r.score).toBe(0);
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toContain(`'${name}'`);
  });
});

describe('Lab 6: nothing to import the answer from', () => {
  it.each([
    ['doUserAddrFaultRetry', '@spf/fault-classic'],
    ['doUserAddrFault', '@spf/fault-classic'],
    ['mmAccountFault', '@spf/fault-classic'],
    ['classicFaultHandler', '@spf/fault-classic'],
    ['maybeUnlockMmapForIo', '@spf/file-backed'],
    ['builtinFilemapRetryPaths', '@spf/file-backed'],
    ['filemapFault', '@spf/file-backed'],
  ])('importing %s from %s refuses to load', async (name, pkg) => {
    const r = await gradeSources(lab6, {
      ...referenceSources(lab6),
      'fault-retry.ts': `import { ${name} } from '${pkg}';\nexport const doUserAddrFaultRetry = ${name};\nexport function mmAccountFault() {}`,
    });
    expect(r.score).toBe(0);
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toContain(`'${name}'`);
  });

  it("handleMmFault refuses an environment without the student's accounting (it would reach the package's)", async () => {
    const ref = referenceSources(lab6);
    const text = ref['fault-retry.ts'].replace(
      'yield* handleMmFault(env, mm,',
      'yield* handleMmFault({ ...env, userFaultPaths: undefined }, mm,',
    );
    expect(text).not.toBe(ref['fault-retry.ts']);
    const r = await gradeSources(lab6, { ...ref, 'fault-retry.ts': text });
    const first = r.results.find((x) => x.id === 'anon-faults');
    expect(first?.status).not.toBe('pass');
    expect(JSON.stringify(first)).toMatch(
      /handleMmFault: pass the environment your doUserAddrFaultRetry received/,
    );
  });
});

describe('no host access from student code', () => {
  it('a computed dynamic import (node:os) is refused before the code runs', async () => {
    const r = await gradeSources(lab1, {
      'walk.ts': [
        "const name = ['node', 'os'].join(':');",
        'const os = await import(name);',
        'export const host = os.hostname();',
        'export function walk(): never { throw new Error(host); }',
      ].join('\n'),
    });
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toMatch(/dynamic import/);
  });
});

describe('bounded input', () => {
  it('a student file over 256 KiB is refused before transpiling (a 12 MB file once took 2.6 GB)', async () => {
    const r = await gradeSources(lab1, {
      'walk.ts': `// ${'x'.repeat(300 * 1024)}\nexport const walk = 1;\n`,
    });
    expect(r.status).toBe('load-error');
    expect(r.error?.message).toContain('walk.ts is 301 KiB; a lab file may have at most 256 KiB of text');
    expect(r.results.every((t) => t.status === 'skipped')).toBe(true);
  });
});
