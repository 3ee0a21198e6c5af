import { describe, expect, it } from 'vitest';
import { PLAYGROUND_EXAMPLES } from './examples.js';
import { runPlayground } from './run-playground.js';
import { DEFAULT_SETTINGS, type PlaygroundSettings } from './settings.js';

const example = (id: string): PlaygroundSettings => {
  const e = PLAYGROUND_EXAMPLES.find((x) => x.id === id);
  if (!e) throw new Error(`no example ${id}`);
  return e.settings;
};

describe('runPlayground', () => {
  it("runs the README's fork example: maps, page tables with flags, counters, the SIGSEGV, a trace", () => {
    const r = runPlayground(example('fork'));
    expect(r.error).toBeNull();
    expect(r.failure).toBeNull();
    expect(r.printed).toEqual(['parent reads 42 rusage {"minflt":1,"majflt":0}']);
    expect(r.log).toEqual(['demo[1]: killed by SIGSEGV (MAPERR) at 0x7ffff7fff000']);
    const byLabel = new Map(r.snapshots.map((s) => [s.label.split(' (')[0], s]));
    const before = byLabel.get('child before its store');
    const after = byLabel.get('child after its store');
    expect(before?.maps).toMatch(/^7ffff7ffd000-7ffff7fff000 rw-p 00000000 00:00 0/);
    // After fork the child's PTE is write-protected (COW); after its store it is its own writable copy.
    const pte = (dump: string | undefined) => dump?.split('\n').find((l) => l.includes('va 0x7ffff7ffd000'));
    expect(pte(before?.pageTables)).toMatch(/\[P US D .*XD\]/);
    expect(pte(before?.pageTables)).not.toMatch(/\bRW\b/);
    expect(pte(after?.pageTables)).toMatch(/\[P RW US A D .*XD\]/);
    expect(after?.tasks).toEqual([{ pid: 2, tid: 2, cpu: 1, minflt: 1, majflt: 0 }]);
    expect(r.processes.map((p) => p.status)).toEqual(['killed by SIGSEGV (MAPERR)', 'exited with 0']);
    // The timeline's trace covers both CPUs; the Chrome trace names one thread per CPU.
    expect(new Set(r.trace?.events.map((e) => e[0]))).toEqual(new Set([0, 1]));
    const chrome = JSON.parse(r.chromeTrace ?? '{}') as { traceEvents: { name: string; ph: string }[] };
    expect(chrome.traceEvents.filter((e) => e.name === 'thread_name')).toHaveLength(2);
    expect(chrome.traceEvents.filter((e) => e.ph === 'X').length).toBe(r.trace?.events.length);
  });

  it('is deterministic: the same settings give the same trace', () => {
    // @spf/vma numbers VMAs (vma#N) from a counter per module instance, so a second run in the same
    // module instance names them differently; the page runs each program in a fresh worker.
    const trace = () => runPlayground(example('cow')).chromeTrace?.replace(/vma#\d+/g, 'vma#');
    expect(trace()).toBe(trace());
  });

  it('shows copy-on-write: the child copies, the parent reuses after the child exits', () => {
    const r = runPlayground(example('cow'));
    expect(r.printed).toContain('child read every page with 0 faults (pages shared)');
    expect(r.printed).toContain('parent wrote page 0: 1 fault (reused, not copied)');
    expect(r.vmstat).toMatch(/cowCopies 1\ncowReuses 1/);
  });

  it('runs the file example: one major fault for the evicted page, none for the pages fault-around mapped', () => {
    const r = runPlayground(example('file'));
    expect(r.error).toBeNull();
    expect(r.failure).toBeNull();
    expect(r.printed).toEqual([
      'page 0 reads 7 {"minflt":0,"majflt":1}',
      'pages 1-15 read {"minflt":0,"majflt":1}',
    ]);
    const snap = r.snapshots[0];
    expect(snap?.maps).toMatch(/ r--s 00000000 .* \/mnt\/data$/m);
    expect(snap?.pageTables.split('\n').filter((l) => / va 0x.*\[P US A XD\]/.test(l))).toHaveLength(16);
  });

  it('has the open(2) and posix_fadvise(2) constants in scope', () => {
    const r = runPlayground({
      ...DEFAULT_SETTINGS,
      source:
        "print(O_RDONLY, O_RDWR, O_CREAT, POSIX_FADV_DONTNEED, MAP_SHARED);\nspawn('x', function* () {});\n",
    });
    expect(r.error).toBeNull();
    expect(r.printed).toEqual(['0 2 64 4 1']);
  });

  it('finds the per-VMA-lock race with vma_start_write() in mprotect switched off, and not with it on', () => {
    const broken = runPlayground(example('spf-race'));
    expect(broken.error).toBeNull();
    expect(broken.explored?.found).toBe(true);
    expect(broken.failure?.message).toMatch(/invariants violated/);
    expect(broken.failure?.schedule).toMatch(/^s1:/);
    expect(broken.trace?.events.length).toBeGreaterThan(0);
    const fixed = runPlayground({ ...example('spf-race'), specOptions: [] });
    expect(fixed.error).toBeNull();
    expect(fixed.explored).toEqual({ policy: 'pct(seed=1,depth=3)', runs: 150, found: false });
    expect(fixed.failure).toBeNull();
  });

  it('runs the small scaling experiment: every thread faults each of its pages once', () => {
    const r = runPlayground(example('scaling'));
    expect(r.error).toBeNull();
    expect(r.failure).toBeNull();
    expect(r.printed).toEqual(['faults: 64']); // 4 threads x 16 pages
    expect(r.processes[0]?.tasks.map((t) => t.cpu)).toEqual([0, 0, 1, 2, 3]);
  });

  it('runs a replay script and prints what spf replay prints', () => {
    const r = runPlayground(example('replay'));
    expect(r.error).toBeNull();
    expect(r.replayOutput).toContain(
      'maps\n0-1 rw-p 0 -\n1-2 r--p 0 -\n2-4 rw-p 0 -\nend\ntouch SIGSEGV ACCERR',
    );
  });

  it('says what is wrong with a program instead of running it', () => {
    const run = (source: string, more: Partial<PlaygroundSettings> = {}) =>
      runPlayground({ ...DEFAULT_SETTINGS, ...more, source }).error;
    expect(run('spawn("x", function* (u) { yield* u.store8(0, 1) ')).toMatch(
      /program\.ts:1:\d+: syntax error/,
    );
    expect(run('import { boot } from "@spf/kernel";')).toMatch(/cannot import/);
    expect(run('print(1)')).toMatch(/started no process/);
    expect(run('spawn("x", function* (u) {}, 5)')).toMatch(/cpu must be a whole number from 0 to 1/);
    expect(run('spawn("x", function* (u) {})', { handler: 'nosuch' as 'classic' })).toMatch(
      /handler must be one of/,
    );
    expect(run('spawn("x", function* (u) {})', { handler: 'pervma', specOptions: ['checks'] })).toMatch(
      /key=value/,
    );
    expect(run('mmap 1 2', { mode: 'replay' })).toMatch(/line 1: mmap expects/);
  });

  it('reports a check that fails as a failure with a replayable schedule', () => {
    const r = runPlayground({
      ...DEFAULT_SETTINGS,
      source: 'spawn("x", function* (u) { yield* u.schedYield(); check(false, "on purpose"); })',
    });
    expect(r.error).toBeNull();
    expect(r.failure?.message).toMatch(/check failed: on purpose/);
    expect(r.failure?.report).toMatch(/EXCEPTION/);
  });
});
