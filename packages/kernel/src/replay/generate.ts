import { Prng } from '@spf/machine';
import { formatOp, MAX_FILE_ID, type MmapSource, type Prot, type ReplayOp, type Share } from './format.js';

/** Options of {@link generateScript}. */
export interface GenerateOptions {
  /** Ops before the closing `maps` and `pagemap` (default 40). */
  readonly ops?: number;
  /** Every range lies in pages [0, window) (default 64), so ranges keep meeting, splitting and merging. */
  readonly window?: number;
  /** Longest mmap/munmap/mprotect range, in pages (default 8). */
  readonly maxPages?: number;
  /** Include MAP_SHARED mappings (default true). */
  readonly shared?: boolean;
  /** Include PROT_EXEC in protections (default true). */
  readonly exec?: boolean;
  /**
   * Sometimes use zero lengths (default true): zero-length mmap and munmap fail with EINVAL, zero-length
   * mprotect succeeds. Overlapping MAP_FIXED_NOREPLACE maps (EEXIST) and munmap/mprotect over holes
   * (ENOMEM for mprotect) happen either way.
   */
  readonly badArgs?: boolean;
  /**
   * Mix in this many files (ids 0 to files-1; default 0, anonymous memory only): `file`, `evict`,
   * `truncate`, `read`, `write` and mmaps of `<id>:<pgoff>`, private and shared, some starting or reaching
   * past the end of the file (SIGBUS when touched). With badArgs, sometimes an id that has no file (EBADF)
   * or a `file` of an id that exists (EEXIST).
   */
  readonly files?: number;
  /** Largest file size in pages for `file` and `truncate` (default 24). */
  readonly maxFilePages?: number;
}

interface PageModel {
  prot: Prot;
  shared: boolean;
}

const PROTS_NO_EXEC: readonly Prot[] = [
  { read: true, write: true, exec: false },
  { read: true, write: true, exec: false },
  { read: true, write: true, exec: false },
  { read: true, write: false, exec: false },
  { read: false, write: false, exec: false },
  { read: false, write: true, exec: false },
];
const PROTS_EXEC: readonly Prot[] = [
  ...PROTS_NO_EXEC,
  { read: true, write: false, exec: true },
  { read: true, write: true, exec: true },
  { read: false, write: false, exec: true },
];

/**
 * A deterministic generator of replay scripts for conformance runs: the same seed and options always give
 * the same text. Scripts mix mmap (NOREPLACE and fixed, private and shared), munmap, mprotect, touch, maps
 * and pagemap over adjacent and overlapping ranges in a small window, so VMAs split and merge and every
 * errno path is reached.
 *
 * The generator keeps a rough model of what is mapped only to aim touches and ranges at interesting places;
 * it never predicts output. The script ends with `maps` and a `pagemap` of the whole window.
 */
export function generateScript(seed: number, opts: GenerateOptions = {}): string {
  const count = opts.ops ?? 40;
  const window = opts.window ?? 64;
  const maxPages = Math.max(1, Math.min(opts.maxPages ?? 8, window));
  const shared = opts.shared ?? true;
  const badArgs = opts.badArgs ?? true;
  const prots = (opts.exec ?? true) ? PROTS_EXEC : PROTS_NO_EXEC;
  if (!Number.isInteger(window) || window < 1 || window > 65536) {
    throw new RangeError(`generateScript: window must be an integer from 1 to 65536 pages, not ${window}`);
  }
  const files = opts.files ?? 0;
  const maxFilePages = opts.maxFilePages ?? 24;
  if (!Number.isInteger(files) || files < 0 || files > MAX_FILE_ID) {
    throw new RangeError(`generateScript: files must be an integer from 0 to ${MAX_FILE_ID}, not ${files}`);
  }
  if (!Number.isInteger(maxFilePages) || maxFilePages < 1 || maxFilePages > 65536) {
    throw new RangeError(
      `generateScript: maxFilePages must be an integer from 1 to 65536, not ${maxFilePages}`,
    );
  }
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`generateScript: ops must be a non-negative integer, not ${count}`);
  }
  const rng = new Prng(seed);
  const chance = (p: number) => rng.below(1_000_000) < p * 1_000_000;
  const pick = <T>(xs: readonly T[]): T => xs[rng.below(xs.length)];
  const model = new Map<number, PageModel>();

  const length = (): number => (badArgs && chance(0.05) ? 0 : 1 + rng.below(maxPages));
  /** Maximal runs of consecutive mapped pages in the model, as [start, end) page pairs. */
  const runs = (): [number, number][] => {
    const out: [number, number][] = [];
    for (let p = 0; p < window; p++) {
      if (!model.has(p)) continue;
      const s = p;
      while (p < window && model.has(p)) p++;
      out.push([s, p]);
    }
    return out;
  };
  const clampStart = (off: number, npages: number): number =>
    Math.min(Math.max(0, window - npages), Math.max(0, off));
  /** Where a new mapping goes: right before or after a mapped run half the time (so VMAs merge), else anywhere. */
  const mmapStart = (npages: number): number => {
    const rs = runs();
    if (rs.length > 0 && chance(0.5)) {
      const [s, e] = pick(rs);
      return clampStart(chance(0.5) ? e : s - npages, npages);
    }
    return rng.below(Math.max(0, window - npages) + 1);
  };
  /**
   * A range for munmap or mprotect: inside a mapped run most of the time (so VMAs split), straddling a run's
   * edge sometimes, else anywhere (holes).
   */
  const changeRange = (): [number, number] => {
    const npages = length();
    const rs = runs();
    const r = rng.below(100);
    if (rs.length > 0 && r < 60) {
      const [s, e] = pick(rs);
      const n = npages === 0 ? 0 : 1 + rng.below(Math.min(npages, e - s));
      return [s + rng.below(e - s - n + 1), n];
    }
    if (rs.length > 0 && r < 80) {
      const [s, e] = pick(rs);
      const edge = chance(0.5) ? s : e;
      return [clampStart(edge - rng.below(npages + 1), npages), npages];
    }
    return [rng.below(Math.max(0, window - npages) + 1), npages];
  };

  /** Sizes in pages of the files created so far, by id. */
  const fileSizes = new Map<number, number>();
  /** A file id: one that exists most of the time; with badArgs sometimes one without a file (EBADF). */
  const someId = (): number => {
    const ids = [...fileSizes.keys()];
    if (ids.length === 0 || (badArgs && chance(0.05))) return rng.below(files + 1) % (MAX_FILE_ID + 1);
    return pick(ids);
  };
  /** A page of a file: inside it mostly, around its end sometimes (EOF, SIGBUS, a write that extends it). */
  const filePage = (id: number): number => {
    const size = fileSizes.get(id) ?? 0;
    return chance(0.8) && size > 0 ? rng.below(size) : size + rng.below(3);
  };
  const fileOp = (): void => {
    const r = rng.below(100);
    const missing = [...Array(files).keys()].filter((id) => !fileSizes.has(id));
    if (r < 15 || fileSizes.size === 0) {
      const id = missing.length > 0 && !(badArgs && chance(0.1)) ? pick(missing) : rng.below(files);
      const npages = chance(0.05) ? 0 : 1 + rng.below(maxFilePages);
      ops.push({ kind: 'file', id, npages });
      if (!fileSizes.has(id)) fileSizes.set(id, npages);
    } else if (r < 40) {
      ops.push({ kind: 'evict', id: someId() });
    } else if (r < 52) {
      const id = someId();
      const npages = rng.below(maxFilePages + 1);
      ops.push({ kind: 'truncate', id, npages });
      if (fileSizes.has(id)) fileSizes.set(id, npages);
    } else if (r < 78) {
      const id = someId();
      ops.push({ kind: 'read', id, page: filePage(id) });
    } else {
      const id = someId();
      const page = filePage(id);
      ops.push({ kind: 'write', id, page });
      const size = fileSizes.get(id);
      if (size !== undefined && page >= size) fileSizes.set(id, page + 1);
    }
  };
  /** An mmap source: a file (from a page inside it, mostly) when there are files, else anonymous memory. */
  const mmapSource = (): MmapSource => {
    if (files === 0 || !chance(0.6)) return { kind: 'anon' };
    const id = someId();
    const size = fileSizes.get(id) ?? 0;
    return { kind: 'file', id, pgoff: chance(0.85) ? rng.below(Math.max(1, size)) : size + rng.below(3) };
  };

  const ops: ReplayOp[] = [];
  let lastTouched = -1;
  for (let i = 0; i < count; i++) {
    if (files > 0 && chance(0.25)) {
      fileOp();
      continue;
    }
    const r = rng.below(100);
    if (r < 20) {
      const npages = length();
      const off = mmapStart(npages);
      const prot = pick(prots);
      const share: Share = shared && chance(0.2) ? 'shared' : 'private';
      const fixed = chance(0.2);
      ops.push({ kind: 'mmap', off, npages, prot, share, source: mmapSource(), fixed });
      let free = true;
      for (let p = off; p < off + npages; p++) free &&= !model.has(p);
      if (fixed || free) {
        for (let p = off; p < off + npages; p++) model.set(p, { prot, shared: share === 'shared' });
      }
    } else if (r < 30) {
      const [off, npages] = changeRange();
      ops.push({ kind: 'munmap', off, npages });
      for (let p = off; p < off + npages; p++) model.delete(p);
    } else if (r < 45) {
      // Zero-length mprotect is legal (returns 0); ranges over holes give ENOMEM after changing the part
      // before the hole, which is exactly the kind of detail conformance runs must pin down.
      const [off, npages] = changeRange();
      const prot = pick(prots);
      ops.push({ kind: 'mprotect', off, npages, prot });
      for (let p = off; p < off + npages; p++) {
        const m = model.get(p);
        if (m !== undefined) m.prot = prot;
      }
    } else if (r < 85) {
      // Mostly mapped pages; sometimes the page touched last (present now: a fault-free access, or a
      // write after a read), sometimes anywhere (holes).
      const mapped = [...model.keys()];
      let page: number;
      if (model.has(lastTouched) && chance(0.25)) page = lastTouched;
      else if (mapped.length > 0 && chance(0.8)) page = pick(mapped);
      else page = rng.below(window);
      lastTouched = page;
      ops.push({ kind: 'touch', page, access: chance(0.5) ? 'r' : 'w' });
    } else if (r < 93) {
      ops.push({ kind: 'maps' });
    } else {
      const npages = 1 + rng.below(window);
      ops.push({ kind: 'pagemap', off: rng.below(window - npages + 1), npages });
    }
  }
  ops.push({ kind: 'maps' }, { kind: 'pagemap', off: 0, npages: window });

  const header =
    `# spf replay script from generateScript(${seed}, { ops: ${count}, window: ${window}, ` +
    `maxPages: ${maxPages}, shared: ${shared}, exec: ${prots === PROTS_EXEC}, badArgs: ${badArgs}` +
    `${files > 0 ? `, files: ${files}, maxFilePages: ${maxFilePages}` : ''} })\n`;
  return header + ops.map((op) => `${formatOp(op)}\n`).join('');
}
