import { describe, expect, it } from 'vitest';
import { ReplayParseError } from './errors.js';
import { formatScript } from './format.js';
import { parseScript } from './parse.js';

function parseError(script: string): ReplayParseError {
  try {
    parseScript(script);
  } catch (e) {
    if (e instanceof ReplayParseError) return e;
    throw e;
  }
  throw new Error(`expected a ReplayParseError for ${JSON.stringify(script)}`);
}

describe('parseScript', () => {
  it('parses every op, skipping comments and blank lines, and records line numbers', () => {
    const ops = parseScript(
      [
        '# a comment',
        '',
        'mmap 0 4 rw private anon',
        '  mmap 4 2 - shared anon fixed   # trailing comment',
        'munmap 1 1',
        'mprotect 2 3 rx',
        'touch 3 r',
        'touch 0 w',
        'maps',
        'pagemap 0 8',
      ].join('\n'),
    );
    expect(ops).toEqual([
      {
        kind: 'mmap',
        off: 0,
        npages: 4,
        prot: { read: true, write: true, exec: false },
        share: 'private',
        source: { kind: 'anon' },
        fixed: false,
        line: 3,
      },
      {
        kind: 'mmap',
        off: 4,
        npages: 2,
        prot: { read: false, write: false, exec: false },
        share: 'shared',
        source: { kind: 'anon' },
        fixed: true,
        line: 4,
      },
      { kind: 'munmap', off: 1, npages: 1, line: 5 },
      { kind: 'mprotect', off: 2, npages: 3, prot: { read: true, write: false, exec: true }, line: 6 },
      { kind: 'touch', page: 3, access: 'r', line: 7 },
      { kind: 'touch', page: 0, access: 'w', line: 8 },
      { kind: 'maps', line: 9 },
      { kind: 'pagemap', off: 0, npages: 8, line: 10 },
    ]);
  });

  it('accepts prot letters in any order and zero lengths for syscalls (the kernel decides those)', () => {
    const [a, b, c] = parseScript('mprotect 0 1 xwr\nmmap 0 0 w private anon\nmunmap 5 0\n');
    expect(a).toMatchObject({ prot: { read: true, write: true, exec: true } });
    expect(b).toMatchObject({ npages: 0, prot: { read: false, write: true, exec: false } });
    expect(c).toMatchObject({ kind: 'munmap', npages: 0 });
  });

  it('handles CRLF line endings and an empty script', () => {
    expect(parseScript('maps\r\ntouch 1 r\r\n')).toHaveLength(2);
    expect(parseScript('')).toEqual([]);
    expect(parseScript('# only a comment\n\n')).toEqual([]);
  });

  it('round-trips through formatScript', () => {
    const text =
      'mmap 3 2 rwx shared anon fixed\nmprotect 0 9 -\ntouch 7 w\nmaps\npagemap 1 2\nmunmap 0 64\n';
    expect(formatScript(parseScript(text))).toBe(text);
  });

  it('names the line and the expected syntax for a malformed mmap', () => {
    const e = parseError('maps\n\nmmap 1 2\n');
    expect(e.line).toBe(3);
    expect(e.message).toBe(
      'line 3: mmap expects <off> <npages> <prot> <share> anon [fixed]; got "mmap 1 2" (missing <prot>)',
    );
    expect(e.name).toBe('ReplayParseError');
    expect(e.unsupported).toBe(false);
  });

  const bad: [string, RegExp][] = [
    [
      'frobnicate 1 2',
      /expected an op: mmap, munmap, mprotect, touch, maps or pagemap.*unknown op "frobnicate"/,
    ],
    ['mmap', /mmap expects .*missing <off>/],
    ['mmap x 1 rw private anon', /<off> must be a decimal number of pages, not "x"/],
    ['mmap -1 1 rw private anon', /<off> must be a decimal number/],
    ['mmap 0x10 1 rw private anon', /<off> must be a decimal number/],
    ['mmap 1.5 1 rw private anon', /<off> must be a decimal number/],
    ['mmap 0 4294967297 rw private anon', /<npages> 4294967297 is beyond the arena/],
    ['mmap 4294967295 2 rw private anon', /run past the end of the arena/],
    ['mmap 0 1 rwr private anon', /<prot> must be "-" or letters/],
    ['mmap 0 1 q private anon', /<prot> must be "-" or letters/],
    ['mmap 0 1 r- private anon', /<prot> must be "-" or letters/],
    ['mmap 0 1 rw', /missing <share>/],
    ['mmap 0 1 rw public anon', /<share> must be private or shared, not "public"/],
    ['mmap 0 1 rw private', /missing the source \(anon\)/],
    ['mmap 0 1 rw private file', /the source must be anon, not "file"/],
    ['mmap 0 1 rw private anon fixd', /the only flag is fixed, not "fixd"/],
    ['mmap 0 1 rw private anon fixed now', /unexpected "now"/],
    ['munmap 1', /munmap expects <off> <npages>.*missing <npages>/],
    ['munmap 1 2 3', /munmap expects <off> <npages>.*unexpected "3"/],
    ['mprotect 1 2', /mprotect expects <off> <npages> <prot>.*missing <prot>/],
    ['mprotect 1 2 rw extra', /unexpected "extra"/],
    ['touch 1', /touch expects <page> r\|w.*missing r\|w/],
    ['touch 1 rw', /access must be r or w, not "rw"/],
    ['touch 4294967296 r', /<page> must be below 4294967296/],
    ['touch r 1', /<page> must be a decimal number/],
    ['maps now', /maps expects no arguments.*unexpected "now"/],
    ['pagemap 0', /pagemap expects <off> <npages>.*missing <npages>/],
    ['pagemap 0 0', /<npages> must be from 1 to 65536/],
    ['pagemap 0 65537', /<npages> must be from 1 to 65536/],
  ];
  for (const [line, want] of bad) {
    it(`rejects "${line}"`, () => {
      const e = parseError(`# header\n${line}\n`);
      expect(e).toBeInstanceOf(ReplayParseError);
      expect(e.line).toBe(2);
      expect(e.text).toBe(line);
      expect(e.message).toMatch(/^line 2: /);
      expect(e.message).toMatch(want);
    });
  }

  it('rejects the file ops of @spf/file-backed as not supported yet', () => {
    for (const line of ['file 1 4', 'evict 1 0 4', 'mmap 0 4 r private 1:0']) {
      const e = parseError(line);
      expect(e.unsupported).toBe(true);
      expect(e.message).toMatch(/arrives with @spf\/file-backed and is not supported yet/);
    }
  });

  it('stops at the first bad line', () => {
    expect(parseError('maps\ntouch 1 x\nbogus\n').line).toBe(2);
  });
});
