import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { handleTypeCheck } from './type-check-service.js';

const labFile = (lab: string, kind: 'reference' | 'starter', name: string) =>
  readFileSync(
    fileURLToPath(new URL(`../../../../packages/labs/lab-files/${lab}/${kind}/${name}`, import.meta.url)),
    'utf8',
  );

const walk = labFile('lab1', 'reference', 'walk.ts');
const diagnostics = (files: Record<string, string>, file: string) => {
  const r = handleTypeCheck({ id: 1, kind: 'diagnostics', files, file });
  if (r.kind !== 'diagnostics') throw new Error(JSON.stringify(r));
  return r.diagnostics;
};

describe("the editor's TypeScript language service", () => {
  it('finds no error in the reference solutions and the starters', () => {
    expect(diagnostics({ 'walk.ts': walk }, 'walk.ts')).toEqual([]);
    expect(diagnostics({ 'walk.ts': labFile('lab1', 'starter', 'walk.ts') }, 'walk.ts')).toEqual([]);
    const lab2 = {
      'seqcount.ts': labFile('lab2', 'reference', 'seqcount.ts'),
      'rwsem.ts': labFile('lab2', 'reference', 'rwsem.ts'),
    };
    expect(diagnostics(lab2, 'seqcount.ts')).toEqual([]);
    expect(diagnostics(lab2, 'rwsem.ts')).toEqual([]);
  });

  it.each([
    ['lab3', ['do-anonymous-page.ts', 'do-wp-page.ts']],
    ['lab4', ['speculative-fault.ts']],
    ['lab5', ['lock-vma-under-rcu.ts', 'vma-start-write.ts']],
    ['lab6', ['fault-retry.ts', 'filemap-retry.ts']],
  ])('finds no error in %s (vma, fault-classic, fault-spec declarations)', (lab, names) => {
    for (const kind of ['reference', 'starter'] as const) {
      const files = Object.fromEntries(names.map((n) => [n, labFile(lab, kind, n)]));
      for (const n of names) expect(diagnostics(files, n), `${lab} ${kind} ${n}`).toEqual([]);
    }
    const broken = { [names[0]]: labFile(lab, 'reference', names[0]).replace('yield* ', 'yield* nosuch.') };
    expect(diagnostics(broken, names[0]).length).toBeGreaterThan(0);
  });

  it('reports a type error against the lab API at its position', () => {
    const bad = walk.replace('mem.readEntry(', 'mem.readEntri(');
    const d = diagnostics({ 'walk.ts': bad }, 'walk.ts');
    expect(d.length).toBeGreaterThan(0);
    expect(d[0].severity).toBe('error');
    expect(d[0].message).toMatch(/Property 'readEntri' does not exist on type 'WalkMemory'/);
    expect(bad.slice(d[0].from, d[0].to)).toBe('readEntri');
  });

  it('completes the members of a lab API object', () => {
    const at = walk.indexOf('mem.readEntry(') + 'mem.'.length;
    const r = handleTypeCheck({
      id: 2,
      kind: 'completions',
      files: { 'walk.ts': walk },
      file: 'walk.ts',
      pos: at,
    });
    expect(r.kind).toBe('completions');
    if (r.kind !== 'completions') return;
    expect(r.from).toBe(at);
    expect(r.entries.map((e) => e.label)).toEqual(expect.arrayContaining(['readEntry', 'setBits']));
  });

  it('shows the type under the cursor', () => {
    const at = walk.indexOf('regs.cr3') + 1;
    const r = handleTypeCheck({
      id: 3,
      kind: 'quickInfo',
      files: { 'walk.ts': walk },
      file: 'walk.ts',
      pos: at,
    });
    expect(r.kind === 'quickInfo' && r.info?.type).toMatch(/regs: PagingRegs/);
  });
});
