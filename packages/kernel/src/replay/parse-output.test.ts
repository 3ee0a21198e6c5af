import { describe, expect, it } from 'vitest';
import { ReplayOutputError } from './errors.js';
import { formatObservations, type Observation } from './observation.js';
import { parseObservations } from './parse-output.js';

describe('parseObservations', () => {
  it('reads back every kind of observation that formatObservations prints', () => {
    const all: Observation[] = [
      { op: 'mmap', errno: null },
      { op: 'mmap', errno: 'EEXIST' },
      { op: 'munmap', errno: 'EINVAL' },
      { op: 'mprotect', errno: 'E95' },
      { op: 'touch', result: 'ok', minflt: 1, majflt: 0, value: 0 },
      { op: 'touch', result: 'ok', minflt: 0, majflt: 2 },
      { op: 'touch', result: 'SIGSEGV', code: 'MAPERR' },
      { op: 'touch', result: 'SIGSEGV', code: 'ACCERR' },
      { op: 'touch', result: 'SIGBUS' },
      {
        op: 'maps',
        vmas: [
          { start: 0, end: 1, prot: { read: true, write: true, exec: false }, shared: false, pgoff: 0 },
          { start: 1, end: 3, prot: { read: false, write: false, exec: true }, shared: true, pgoff: 1 },
          {
            start: 3,
            end: 9,
            prot: { read: true, write: false, exec: false },
            shared: false,
            pgoff: 7,
            file: 12,
          },
        ],
      },
      { op: 'file', id: 0, errno: null },
      { op: 'file', id: 1, errno: 'EEXIST' },
      { op: 'evict', id: 9, errno: 'EBADF' },
      { op: 'truncate', id: 2, errno: null },
      { op: 'read', id: 2, page: 5, result: { value: 77 } },
      { op: 'read', id: 2, page: 9, result: 'eof' },
      { op: 'read', id: 7, page: 0, result: { errno: 'EBADF' } },
      { op: 'write', id: 2, page: 40, errno: null },
      { op: 'write', id: 8, page: 0, errno: 'EBADF' },
      { op: 'maps', vmas: [] },
      { op: 'pagemap', pages: ['.', 'Z', 'A', 'F'] },
    ];
    expect(parseObservations(formatObservations(all))).toEqual(all);
  });

  it('names the first line that is not an observation', () => {
    const err = (text: string) => {
      try {
        parseObservations(text);
      } catch (e) {
        if (e instanceof ReplayOutputError) return e;
      }
      throw new Error('expected ReplayOutputError');
    };
    expect(err('mmap ok\ntouch okay\n')).toMatchObject({ line: 2, text: 'touch okay' });
    expect(err('maps\n0-1 rw-q 0 -\nend\n').message).toMatch(/^output line 2: expected a maps line/);
    expect(err('maps\n0-1 rw-p 0 -\n').message).toMatch(/"end" closing "maps"/);
    expect(err('pagemap \n').line).toBe(1);
    expect(err('mmap maybe\n').line).toBe(1);
  });
});
