import { describe, expect, it } from 'vitest';
import { type CliIo, runCli } from './cli-main.js';

function io(files: Record<string, string> = {}) {
  const out = { stdout: '', stderr: '', written: new Map<string, string>() };
  const impl: CliIo = {
    stdout: (s) => {
      out.stdout += s;
    },
    stderr: (s) => {
      out.stderr += s;
    },
    readFile: (p) => {
      const f = files[p];
      if (f === undefined) throw new Error(`ENOENT: no such file ${p}`);
      return f;
    },
    writeFile: (p, t) => {
      out.written.set(p, t);
    },
    chromeTrace: (events, cpus) => ({
      traceEvents: [{ name: 'n', cpus, events: events.length }],
      displayTimeUnit: 'ns',
    }),
  };
  return { out, impl };
}

describe('the spf command', () => {
  it('--help prints the usage and exits 0', () => {
    const { out, impl } = io();
    expect(runCli(['--help'], impl)).toBe(0);
    expect(out.stdout).toContain('spf replay [--no-zero-page] [file|-]');
    expect(out.stdout).toContain('spf run <scenario>');
  });

  it('replay reads a file or stdin and prints the observations', () => {
    const { out, impl } = io({ '-': 'mmap 0 1 rw private anon\ntouch 0 r\n', 's.txt': 'touch 0 r\n' });
    expect(runCli(['replay', '--no-zero-page'], impl)).toBe(0);
    expect(out.stdout).toBe('mmap ok\ntouch ok min=1 maj=0 val=0\n');
    expect(runCli(['replay', 's.txt'], impl)).toBe(0);
    expect(out.stdout).toContain('touch SIGSEGV MAPERR\n');
  });

  it('a malformed replay line exits 2 with an error naming the line', () => {
    const { out, impl } = io({ 'bad.txt': 'mmap 0 1 rw private anon\nmunmap 1\n' });
    expect(runCli(['replay', 'bad.txt'], impl)).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe(
      'spf replay: bad.txt: line 2: munmap expects <off> <npages>; got "munmap 1" (missing <npages>)\n',
    );
  });

  it('bad usage exits 2', () => {
    const { out, impl } = io();
    expect(runCli(['replay', 'missing.txt'], impl)).toBe(2);
    expect(out.stderr).toContain('cannot read missing.txt');
    expect(runCli(['run', 'nope'], impl)).toBe(2);
    expect(runCli(['run', 'scaling', '--threads', 'x'], impl)).toBe(2);
    expect(runCli(['frobnicate'], impl)).toBe(2);
  });

  it('run cow-fork prints the demo and writes a Chrome trace', () => {
    const { out, impl } = io();
    expect(runCli(['run', 'cow-fork', '--trace', 'cow.json'], impl)).toBe(0);
    expect(out.stdout).toContain('child:  wrote 0xcc to page 0: 1 fault (copy-on-write copy)');
    expect(out.stdout).toContain('parent: page 0 still reads 0x10');
    const trace = JSON.parse(out.written.get('cow.json') ?? '{}');
    expect(trace.traceEvents[0].cpus).toBe(2);
    expect(trace.traceEvents[0].events).toBeGreaterThan(100);
  });

  it('run scaling reports the faults taken', () => {
    const { out, impl } = io();
    expect(runCli(['run', 'scaling', '--threads', '2', '--pages', '8', '--churn'], impl)).toBe(0);
    expect(out.stdout).toContain('faults: 16\n');
    expect(out.stdout).toMatch(/mmap\/munmap pairs meanwhile: [1-9]/);
  });
});
