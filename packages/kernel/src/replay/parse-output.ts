import { ReplayOutputError } from './errors.js';
import type { ErrnoName, MapsEntry, Observation, PageState, SegvCode } from './observation.js';

const SYSCALL = /^(mmap|munmap|mprotect) (ok|E[A-Z0-9]+)$/;
const TOUCH_OK = /^touch ok min=(\d+) maj=(\d+)(?: val=(\d+))?$/;
const TOUCH_SEGV = /^touch SIGSEGV (MAPERR|ACCERR|PKUERR)$/;
const MAPS_LINE = /^(\d+)-(\d+) ([r-])([w-])([x-])([ps]) (\d+) (-|f\d+)$/;
const FILE_SYSCALL = /^(file|evict|truncate) (\d+) (ok|E[A-Z0-9]+)$/;
const READ = /^read (\d+) (\d+) (?:val=(\d+)|(eof)|(E[A-Z0-9]+))$/;
const WRITE = /^write (\d+) (\d+) (ok|E[A-Z0-9]+)$/;
const PAGEMAP = /^pagemap ([.ZAF]+)$/;

/**
 * Parses replay output (what `formatObservations` prints, and what the host harness prints) back into
 * observations, e.g. to check a simulator's output field by field or to reason about host output in tests.
 *
 * @throws ReplayOutputError naming the first line that is not an observation.
 */
export function parseObservations(output: string): Observation[] {
  const lines = output.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const out: Observation[] = [];
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    let m: RegExpExecArray | null;
    if ((m = SYSCALL.exec(text))) {
      const op = m[1] as 'mmap' | 'munmap' | 'mprotect';
      out.push({ op, errno: m[2] === 'ok' ? null : (m[2] as ErrnoName) });
    } else if ((m = TOUCH_OK.exec(text))) {
      const base = { op: 'touch', result: 'ok', minflt: Number(m[1]), majflt: Number(m[2]) } as const;
      out.push(m[3] === undefined ? base : { ...base, value: Number(m[3]) });
    } else if ((m = TOUCH_SEGV.exec(text))) {
      out.push({ op: 'touch', result: 'SIGSEGV', code: m[1] as SegvCode });
    } else if (text === 'touch SIGBUS') {
      out.push({ op: 'touch', result: 'SIGBUS' });
    } else if ((m = FILE_SYSCALL.exec(text))) {
      const op = m[1] as 'file' | 'evict' | 'truncate';
      out.push({ op, id: Number(m[2]), errno: m[3] === 'ok' ? null : (m[3] as ErrnoName) });
    } else if ((m = READ.exec(text))) {
      const result =
        m[3] !== undefined
          ? { value: Number(m[3]) }
          : m[4] !== undefined
            ? 'eof'
            : { errno: m[5] as ErrnoName };
      out.push({ op: 'read', id: Number(m[1]), page: Number(m[2]), result } as const);
    } else if ((m = WRITE.exec(text))) {
      out.push({
        op: 'write',
        id: Number(m[1]),
        page: Number(m[2]),
        errno: m[3] === 'ok' ? null : (m[3] as ErrnoName),
      });
    } else if ((m = PAGEMAP.exec(text))) {
      out.push({ op: 'pagemap', pages: [...m[1]] as PageState[] });
    } else if (text === 'maps') {
      const vmas: MapsEntry[] = [];
      for (i++; i < lines.length && lines[i] !== 'end'; i++) {
        const v = MAPS_LINE.exec(lines[i]);
        if (v === null) {
          throw new ReplayOutputError(
            i + 1,
            lines[i],
            'a maps line "<start>-<end> <perms> <pgoff> -|f<id>" or "end"',
          );
        }
        vmas.push({
          start: Number(v[1]),
          end: Number(v[2]),
          prot: { read: v[3] === 'r', write: v[4] === 'w', exec: v[5] === 'x' },
          shared: v[6] === 's',
          pgoff: Number(v[7]),
          ...(v[8] === '-' ? {} : { file: Number(v[8].slice(1)) }),
        });
      }
      if (i >= lines.length)
        throw new ReplayOutputError(lines.length, lines.at(-1) ?? '', '"end" closing "maps"');
      out.push({ op: 'maps', vmas });
    } else {
      throw new ReplayOutputError(
        i + 1,
        text,
        'an observation line (mmap, munmap, mprotect, touch, maps, pagemap, file, evict, truncate, read, write)',
      );
    }
  }
  return out;
}
