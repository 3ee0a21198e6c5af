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
      'line 3: mmap expects <off> <npages> <prot> <share> anon|<id>:<pgoff> [fixed]; got "mmap 1 2" (missing <prot>)',
    );
    expect(e.name).toBe('ReplayParseError');
    expect(e.unsupported).toBe(false);
  });

  const bad: [string, RegExp][] = [
    [
      'frobnicate 1 2',
      /expected an op: mmap, munmap, mprotect, touch, maps, pagemap, file, evict, truncate, read or write.*unknown op "frobnicate"/,
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
    ['mmap 0 1 rw private', /missing the source \(anon or <id>:<pgoff>\)/],
    ['mmap 0 1 rw private file', /the source must be anon or <id>:<pgoff>, not "file"/],
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

  it('parses the file ops and file mmap sources, and formats them back to the same text', () => {
    const text = [
      'file 3 16',
      'evict 3',
      'truncate 3 0',
      'read 3 7',
      'write 63 65536',
      'mmap 0 4 r private 3:2',
      'mmap 8 2 rw shared 0:0 fixed',
    ].join('\n');
    const ops = parseScript(text);
    expect(ops.slice(0, 5)).toEqual([
      { kind: 'file', id: 3, npages: 16, line: 1 },
      { kind: 'evict', id: 3, line: 2 },
      { kind: 'truncate', id: 3, npages: 0, line: 3 },
      { kind: 'read', id: 3, page: 7, line: 4 },
      { kind: 'write', id: 63, page: 65536, line: 5 },
    ]);
    expect(ops[5]).toMatchObject({ kind: 'mmap', source: { kind: 'file', id: 3, pgoff: 2 }, fixed: false });
    expect(ops[6]).toMatchObject({
      kind: 'mmap',
      share: 'shared',
      source: { kind: 'file', id: 0, pgoff: 0 },
    });
    expect(formatScript(ops)).toBe(`${text}\n`);
  });

  const badFile: [string, RegExp][] = [
    ['file', /file expects <id> <npages>.*missing <id>/],
    ['file 1', /file expects <id> <npages>.*missing <npages>/],
    ['file 64 1', /<id> must be a decimal file id from 0 to 63, not "64"/],
    ['file -1 1', /<id> must be a decimal file id/],
    ['file 1 -4', /<npages> must be a decimal number of pages, not "-4"/],
    ['file 1 2.5', /<npages> must be a decimal number of pages, not "2.5"/],
    ['file 1 65537', /larger than the 65536 pages a file may have/],
    ['file 1 4 x', /unexpected "x"/],
    ['evict', /evict expects <id>.*missing <id>/],
    ['evict 1 0 4', /evict expects <id>.*unexpected "0 4"/],
    ['evict x', /<id> must be a decimal file id/],
    ['truncate 1', /truncate expects <id> <npages>.*missing <npages>/],
    ['truncate 1 -1', /truncate expects <id> <npages>.*must be a decimal number/],
    ['read 1', /read expects <id> <page>.*missing <page>/],
    ['read 1 4294967296', /read expects <id> <page>.*<page> must be below 4294967296/],
    ['write 1 x', /write expects <id> <page>.*not "x"/],
    ['write 1 65537', /write expects <id> <page>.*larger than the 65536 pages/],
    ['mmap 0 4 r private 1', /the source must be anon or <id>:<pgoff>, not "1"/],
    ['mmap 0 4 r private 1:', /missing <pgoff>|<pgoff> must be a decimal/],
    ['mmap 0 4 r private 99:0', /<id> must be a decimal file id from 0 to 63, not "99"/],
    ['mmap 0 4 r private 1:-2', /<pgoff> must be a decimal number of pages, not "-2"/],
    ['mmap 0 4 r private file', /the source must be anon or <id>:<pgoff>/],
  ];
  for (const [line, want] of badFile) {
    it(`rejects the file op line "${line}", naming the line and what was expected`, () => {
      const e = parseError(`maps\n${line}\n`);
      expect(e.line).toBe(2);
      expect(e.unsupported).toBe(false);
      expect(e.message).toMatch(/^line 2: /);
      expect(e.message).toMatch(want);
    });
  }

  it('stops at the first bad line', () => {
    expect(parseError('maps\ntouch 1 x\nbogus\n').line).toBe(2);
  });
});
