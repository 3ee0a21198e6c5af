import { describe, expect, it } from 'vitest';
import { ReplayParseError } from './replay/errors.js';
import { runReplay } from './run-replay.js';

describe('runReplay (the simulator side of spf replay)', () => {
  it('prints what Linux prints for a split VMA, ACCERR, MAPERR, minor faults and the zero page', () => {
    const script = [
      'mmap 0 4 rw private anon',
      'mprotect 1 2 r',
      'maps',
      'touch 1 w',
      'touch 0 w',
      'touch 0 w',
      'touch 0 r',
      'touch 3 r',
      'touch 3 w',
      'touch 9 r',
      'mmap 0 1 r private anon',
      'pagemap 0 5',
    ].join('\n');
    expect(runReplay(script).output).toBe(
      [
        'mmap ok',
        'mprotect ok',
        'maps',
        '0-1 rw-p 0 -',
        '1-3 r--p 0 -',
        '3-4 rw-p 0 -',
        'end',
        'touch SIGSEGV ACCERR',
        'touch ok min=1 maj=0',
        'touch ok min=0 maj=0',
        'touch ok min=0 maj=0 val=90',
        'touch ok min=1 maj=0 val=0',
        'touch ok min=1 maj=0',
        'touch SIGSEGV MAPERR',
        'mmap EEXIST',
        'pagemap A..A.',
        '',
      ].join('\n'),
    );
  });

  it('without a zero page a read fault maps a fresh anonymous page', () => {
    const script = 'mmap 0 2 rw private anon\ntouch 0 r\ntouch 0 w\npagemap 0 2\n';
    expect(runReplay(script, { zeroPage: true }).output).toBe(
      'mmap ok\ntouch ok min=1 maj=0 val=0\ntouch ok min=1 maj=0\npagemap A.\n',
    );
    expect(runReplay(script, { zeroPage: false }).output).toBe(
      'mmap ok\ntouch ok min=1 maj=0 val=0\ntouch ok min=0 maj=0\npagemap A.\n',
    );
    expect(runReplay('mmap 0 1 r private anon\ntouch 0 r\npagemap 0 1\n').output).toContain('pagemap Z');
  });

  it('shared anonymous memory shows as F with its shmem offset after a split', () => {
    const out = runReplay('mmap 0 4 rw shared anon\ntouch 2 w\nmprotect 1 1 r\nmaps\npagemap 0 4\n').output;
    expect(out).toBe(
      'mmap ok\ntouch ok min=1 maj=0\nmprotect ok\nmaps\n0-1 rw-s 0 -\n1-2 r--s 1 -\n2-4 rw-s 2 -\nend\npagemap ..F.\n',
    );
  });

  it('errnos: zero-length mmap is EINVAL, mprotect over a hole is ENOMEM', () => {
    expect(runReplay('mmap 0 0 rw private anon\nmprotect 0 1 r\nmunmap 5 1\n').output).toBe(
      'mmap EINVAL\nmprotect ENOMEM\nmunmap ok\n',
    );
  });

  it('a malformed line throws ReplayParseError naming the line, and nothing runs', () => {
    expect(() => runReplay('mmap 0 1 rw private anon\ntouch 0 q\n')).toThrow(ReplayParseError);
    expect(() => runReplay('maps\n\nbogus 1\n')).toThrow(/^line 3: /);
  });
});
