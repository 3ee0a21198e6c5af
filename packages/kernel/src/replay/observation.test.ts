import { describe, expect, it } from 'vitest';
import { formatObservation, formatObservations, formatPerms, type Observation } from './observation.js';

const RW = { read: true, write: true, exec: false };
const R = { read: true, write: false, exec: false };
const NONE = { read: false, write: false, exec: false };

describe('formatObservation', () => {
  it('prints the file ops as the harness does', () => {
    expect(formatObservation({ op: 'file', id: 3, errno: null })).toBe('file 3 ok');
    expect(formatObservation({ op: 'evict', id: 3, errno: null })).toBe('evict 3 ok');
    expect(formatObservation({ op: 'truncate', id: 4, errno: 'EBADF' })).toBe('truncate 4 EBADF');
    expect(formatObservation({ op: 'read', id: 1, page: 2, result: { value: 27 } })).toBe('read 1 2 val=27');
    expect(formatObservation({ op: 'read', id: 1, page: 9, result: 'eof' })).toBe('read 1 9 eof');
    expect(formatObservation({ op: 'read', id: 5, page: 0, result: { errno: 'EBADF' } })).toBe(
      'read 5 0 EBADF',
    );
    expect(formatObservation({ op: 'write', id: 1, page: 2, errno: null })).toBe('write 1 2 ok');
    const file = { start: 4, end: 8, prot: R, shared: true, pgoff: 3, file: 2 };
    expect(formatObservation({ op: 'maps', vmas: [file, { ...file, file: undefined, pgoff: 0 }] })).toBe(
      'maps\n4-8 r--s 3 f2\n4-8 r--s 0 -\nend',
    );
  });

  it('prints syscall results as ok or the errno name', () => {
    expect(formatObservation({ op: 'mmap', errno: null })).toBe('mmap ok');
    expect(formatObservation({ op: 'mmap', errno: 'EEXIST' })).toBe('mmap EEXIST');
    expect(formatObservation({ op: 'munmap', errno: 'EINVAL' })).toBe('munmap EINVAL');
    expect(formatObservation({ op: 'mprotect', errno: 'ENOMEM' })).toBe('mprotect ENOMEM');
    expect(formatObservation({ op: 'mprotect', errno: 'E95' })).toBe('mprotect E95');
  });

  it('prints touches with fault counts, the loaded byte for a load, or the signal', () => {
    expect(formatObservation({ op: 'touch', result: 'ok', minflt: 1, majflt: 0, value: 0 })).toBe(
      'touch ok min=1 maj=0 val=0',
    );
    expect(formatObservation({ op: 'touch', result: 'ok', minflt: 0, majflt: 1, value: 0x5a })).toBe(
      'touch ok min=0 maj=1 val=90',
    );
    expect(formatObservation({ op: 'touch', result: 'ok', minflt: 1, majflt: 0 })).toBe(
      'touch ok min=1 maj=0',
    );
    expect(formatObservation({ op: 'touch', result: 'SIGSEGV', code: 'MAPERR' })).toBe(
      'touch SIGSEGV MAPERR',
    );
    expect(formatObservation({ op: 'touch', result: 'SIGSEGV', code: 'ACCERR' })).toBe(
      'touch SIGSEGV ACCERR',
    );
    expect(formatObservation({ op: 'touch', result: 'SIGBUS' })).toBe('touch SIGBUS');
  });

  it('prints maps as a block from maps to end with /proc/self/maps perms', () => {
    expect(
      formatObservation({
        op: 'maps',
        vmas: [
          { start: 0, end: 1, prot: RW, shared: false, pgoff: 0 },
          { start: 1, end: 2, prot: R, shared: true, pgoff: 1 },
          { start: 2, end: 64, prot: NONE, shared: false, pgoff: 0 },
        ],
      }),
    ).toBe('maps\n0-1 rw-p 0 -\n1-2 r--s 1 -\n2-64 ---p 0 -\nend');
    expect(formatObservation({ op: 'maps', vmas: [] })).toBe('maps\nend');
  });

  it('prints pagemap as one character per page', () => {
    expect(formatObservation({ op: 'pagemap', pages: ['.', '.', 'A', 'Z', 'F', '.'] })).toBe(
      'pagemap ..AZF.',
    );
  });

  it('joins a run into newline-terminated output', () => {
    const run: Observation[] = [
      { op: 'mmap', errno: null },
      { op: 'maps', vmas: [{ start: 0, end: 4, prot: RW, shared: false, pgoff: 0 }] },
      { op: 'touch', result: 'ok', minflt: 1, majflt: 0 },
    ];
    expect(formatObservations(run)).toBe('mmap ok\nmaps\n0-4 rw-p 0 -\nend\ntouch ok min=1 maj=0\n');
    expect(formatObservations([])).toBe('');
  });

  it('formats every prot combination like /proc/self/maps', () => {
    expect(formatPerms({ read: true, write: true, exec: true }, true)).toBe('rwxs');
    expect(formatPerms({ read: false, write: true, exec: false }, false)).toBe('-w-p');
    expect(formatPerms({ read: false, write: false, exec: true }, false)).toBe('--xp');
  });
});
