import { ReplayParseError } from './errors.js';
import {
  ARENA_PAGES,
  MAX_FILE_ID,
  MAX_FILE_PAGES,
  MAX_PAGEMAP_PAGES,
  type MmapSource,
  type ParsedOp,
  type Prot,
  type ReplayOp,
  type Share,
} from './format.js';

const MMAP_SYNTAX = 'mmap expects <off> <npages> <prot> <share> anon|<id>:<pgoff> [fixed]';
const MUNMAP_SYNTAX = 'munmap expects <off> <npages>';
const MPROTECT_SYNTAX = 'mprotect expects <off> <npages> <prot>';
const TOUCH_SYNTAX = 'touch expects <page> r|w';
const MAPS_SYNTAX = 'maps expects no arguments';
const PAGEMAP_SYNTAX = 'pagemap expects <off> <npages>';
const FILE_SYNTAX = 'file expects <id> <npages>';
const EVICT_SYNTAX = 'evict expects <id>';
const TRUNCATE_SYNTAX = 'truncate expects <id> <npages>';
const READ_SYNTAX = 'read expects <id> <page>';
const WRITE_SYNTAX = 'write expects <id> <page>';
const OPS =
  'expected an op: mmap, munmap, mprotect, touch, maps, pagemap, file, evict, truncate, read or write';

/** Thrown inside one line's parse; turned into a ReplayParseError with the line's context. */
class FieldError {
  constructor(
    readonly expected: string,
    readonly detail?: string,
    readonly unsupported = false,
  ) {}
}

function fail(expected: string, detail?: string): never {
  throw new FieldError(expected, detail);
}

/** A whole number of pages in [0, ARENA_PAGES], written in decimal. */
function pages(token: string | undefined, field: string, syntax: string): number {
  if (token === undefined) fail(syntax, `missing ${field}`);
  if (!/^[0-9]+$/.test(token)) fail(syntax, `${field} must be a decimal number of pages, not "${token}"`);
  const n = Number(token);
  if (n > ARENA_PAGES) fail(syntax, `${field} ${token} is beyond the arena's ${ARENA_PAGES} pages`);
  return n;
}

/** `-`, or a non-empty set of the letters r, w, x with none repeated. */
function prot(token: string | undefined, syntax: string): Prot {
  if (token === undefined) fail(syntax, 'missing <prot>');
  if (token === '-') return { read: false, write: false, exec: false };
  const bad = () =>
    fail(syntax, `<prot> must be "-" or letters from r, w, x each at most once, not "${token}"`);
  if (!/^[rwx]{1,3}$/.test(token)) bad();
  if (new Set(token).size !== token.length) bad();
  return { read: token.includes('r'), write: token.includes('w'), exec: token.includes('x') };
}

/** A file id: a decimal number from 0 to MAX_FILE_ID. */
function fileId(token: string | undefined, syntax: string): number {
  if (token === undefined) fail(syntax, 'missing <id>');
  if (!/^[0-9]+$/.test(token) || Number(token) > MAX_FILE_ID) {
    fail(syntax, `<id> must be a decimal file id from 0 to ${MAX_FILE_ID}, not "${token}"`);
  }
  return Number(token);
}

/** A file size or page in pages, at most `max`. */
function filePages(token: string | undefined, field: string, syntax: string, max: number): number {
  const n = pages(token, field, syntax);
  if (n > max) fail(syntax, `${field} ${token} is larger than the ${max} pages a file may have here`);
  return n;
}

function inArena(off: number, npages: number, syntax: string): void {
  if (off + npages > ARENA_PAGES) {
    fail(syntax, `pages ${off}..${off + npages} run past the end of the arena (${ARENA_PAGES} pages)`);
  }
}

function noMore(fields: readonly string[], count: number, syntax: string): void {
  if (fields.length > count) fail(syntax, `unexpected "${fields.slice(count).join(' ')}"`);
}

function parseMmap(f: readonly string[]): ReplayOp {
  const off = pages(f[1], '<off>', MMAP_SYNTAX);
  const npages = pages(f[2], '<npages>', MMAP_SYNTAX);
  inArena(off, npages, MMAP_SYNTAX);
  const p = prot(f[3], MMAP_SYNTAX);
  const share = f[4];
  if (share !== 'private' && share !== 'shared') {
    fail(
      MMAP_SYNTAX,
      share === undefined ? 'missing <share>' : `<share> must be private or shared, not "${share}"`,
    );
  }
  const token = f[5];
  if (token === undefined) fail(MMAP_SYNTAX, 'missing the source (anon or <id>:<pgoff>)');
  let source: MmapSource;
  if (token === 'anon') {
    source = { kind: 'anon' };
  } else {
    const m = /^([^:]*):(.*)$/.exec(token);
    if (m === null) fail(MMAP_SYNTAX, `the source must be anon or <id>:<pgoff>, not "${token}"`);
    source = { kind: 'file', id: fileId(m[1], MMAP_SYNTAX), pgoff: pages(m[2], '<pgoff>', MMAP_SYNTAX) };
  }
  const flag = f[6];
  if (flag !== undefined && flag !== 'fixed') fail(MMAP_SYNTAX, `the only flag is fixed, not "${flag}"`);
  noMore(f, 7, MMAP_SYNTAX);
  return {
    kind: 'mmap',
    off,
    npages,
    prot: p,
    share: share as Share,
    source,
    fixed: flag === 'fixed',
  };
}

function parseFields(f: readonly string[]): ReplayOp {
  switch (f[0]) {
    case 'mmap':
      return parseMmap(f);
    case 'munmap': {
      const off = pages(f[1], '<off>', MUNMAP_SYNTAX);
      const npages = pages(f[2], '<npages>', MUNMAP_SYNTAX);
      inArena(off, npages, MUNMAP_SYNTAX);
      noMore(f, 3, MUNMAP_SYNTAX);
      return { kind: 'munmap', off, npages };
    }
    case 'mprotect': {
      const off = pages(f[1], '<off>', MPROTECT_SYNTAX);
      const npages = pages(f[2], '<npages>', MPROTECT_SYNTAX);
      inArena(off, npages, MPROTECT_SYNTAX);
      const p = prot(f[3], MPROTECT_SYNTAX);
      noMore(f, 4, MPROTECT_SYNTAX);
      return { kind: 'mprotect', off, npages, prot: p };
    }
    case 'touch': {
      const page = pages(f[1], '<page>', TOUCH_SYNTAX);
      if (page >= ARENA_PAGES) fail(TOUCH_SYNTAX, `<page> must be below ${ARENA_PAGES}`);
      const access = f[2];
      if (access !== 'r' && access !== 'w') {
        fail(TOUCH_SYNTAX, access === undefined ? 'missing r|w' : `access must be r or w, not "${access}"`);
      }
      noMore(f, 3, TOUCH_SYNTAX);
      return { kind: 'touch', page, access };
    }
    case 'maps':
      noMore(f, 1, MAPS_SYNTAX);
      return { kind: 'maps' };
    case 'pagemap': {
      const off = pages(f[1], '<off>', PAGEMAP_SYNTAX);
      const npages = pages(f[2], '<npages>', PAGEMAP_SYNTAX);
      if (npages < 1 || npages > MAX_PAGEMAP_PAGES) {
        fail(PAGEMAP_SYNTAX, `<npages> must be from 1 to ${MAX_PAGEMAP_PAGES}`);
      }
      inArena(off, npages, PAGEMAP_SYNTAX);
      noMore(f, 3, PAGEMAP_SYNTAX);
      return { kind: 'pagemap', off, npages };
    }
    case 'file': {
      const id = fileId(f[1], FILE_SYNTAX);
      const npages = filePages(f[2], '<npages>', FILE_SYNTAX, MAX_FILE_PAGES);
      noMore(f, 3, FILE_SYNTAX);
      return { kind: 'file', id, npages };
    }
    case 'evict': {
      const id = fileId(f[1], EVICT_SYNTAX);
      noMore(f, 2, EVICT_SYNTAX);
      return { kind: 'evict', id };
    }
    case 'truncate': {
      const id = fileId(f[1], TRUNCATE_SYNTAX);
      const npages = filePages(f[2], '<npages>', TRUNCATE_SYNTAX, MAX_FILE_PAGES);
      noMore(f, 3, TRUNCATE_SYNTAX);
      return { kind: 'truncate', id, npages };
    }
    case 'read': {
      const id = fileId(f[1], READ_SYNTAX);
      const page = pages(f[2], '<page>', READ_SYNTAX);
      if (page >= ARENA_PAGES) fail(READ_SYNTAX, `<page> must be below ${ARENA_PAGES}`);
      noMore(f, 3, READ_SYNTAX);
      return { kind: 'read', id, page };
    }
    case 'write': {
      const id = fileId(f[1], WRITE_SYNTAX);
      const page = filePages(f[2], '<page>', WRITE_SYNTAX, MAX_FILE_PAGES);
      noMore(f, 3, WRITE_SYNTAX);
      return { kind: 'write', id, page };
    }
    default:
      fail(OPS, `unknown op "${f[0]}"`);
  }
}

/**
 * Parses one script line. Returns null for a blank or comment-only line.
 *
 * @param lineNumber 1-based, used in the error.
 * @throws ReplayParseError naming the line and what was expected.
 */
export function parseLine(text: string, lineNumber: number): ParsedOp | null {
  const hash = text.indexOf('#');
  const body = (hash < 0 ? text : text.slice(0, hash)).trim();
  if (body === '') return null;
  try {
    return { ...parseFields(body.split(/\s+/)), line: lineNumber };
  } catch (e) {
    if (e instanceof FieldError) {
      throw new ReplayParseError(lineNumber, body, e.expected, e.detail, e.unsupported);
    }
    throw e;
  }
}

/**
 * Parses a whole replay script (format in `format.ts` and the package README). The script is parsed
 * completely before anything runs, so a bad line late in a script never leaves earlier ops half-applied.
 *
 * @throws ReplayParseError for the first malformed line.
 */
export function parseScript(text: string): ParsedOp[] {
  const ops: ParsedOp[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const op = parseLine(lines[i], i + 1);
    if (op !== null) ops.push(op);
  }
  return ops;
}
