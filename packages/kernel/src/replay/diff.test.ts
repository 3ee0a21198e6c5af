import { describe, expect, it } from 'vitest';
import { diffReplayOutputs, splitObservations } from './diff.js';

const SCRIPT = '# test\nmmap 0 2 rw private anon\nmaps\ntouch 0 w\ntouch 0 w\n';
const HOST = 'mmap ok\nmaps\n0-2 rw-p 0 -\nend\ntouch ok min=1 maj=0\ntouch ok min=0 maj=0\n';

describe('splitObservations', () => {
  it('gives one chunk per op, keeping a maps block together', () => {
    expect(splitObservations(HOST)).toEqual([
      'mmap ok',
      'maps\n0-2 rw-p 0 -\nend',
      'touch ok min=1 maj=0',
      'touch ok min=0 maj=0',
    ]);
    expect(splitObservations('')).toEqual([]);
  });
});

describe('diffReplayOutputs', () => {
  it('returns null for identical outputs', () => {
    expect(diffReplayOutputs(SCRIPT, HOST, HOST)).toBeNull();
  });

  it('names the first differing op with its script line and both observations', () => {
    const sim = HOST.replace('touch ok min=0', 'touch ok min=1');
    const report = diffReplayOutputs(SCRIPT, HOST, sim);
    expect(report).toContain('op 4 (line 5): `touch 0 w`');
    expect(report).toContain('host printed:\n    touch ok min=0 maj=0');
    expect(report).toContain('simulator printed:\n    touch ok min=1 maj=0');
    expect(report).toContain(
      'script up to that op:\n    mmap 0 2 rw private anon\n    maps\n    touch 0 w\n    touch 0 w',
    );
  });

  it('finds a difference inside a maps block and a truncated output', () => {
    const merged = HOST.replace('0-2 rw-p 0 -\n', '0-1 rw-p 0 -\n1-2 rw-p 0 -\n');
    expect(diffReplayOutputs(SCRIPT, HOST, merged, { expected: 'linux', actual: 'spf' })).toMatch(
      /op 2 \(line 3\): `maps`\n {2}linux printed:\n {4}maps\n {4}0-2 rw-p 0 -\n {4}end\n {2}spf printed:\n {4}maps\n {4}0-1/,
    );
    expect(diffReplayOutputs(SCRIPT, HOST, 'mmap ok\n')).toContain('(nothing: output ended)');
  });

  it('reports outputs that differ only in a trailing newline', () => {
    expect(diffReplayOutputs(SCRIPT, HOST, HOST.trimEnd())).toMatch(/trailing/);
  });
});
