import type { GradeReport, LabOutline } from '@spf/labs';

/**
 * The student's saved progress for one lab version, as stored in localStorage under
 * `spf-course:lab:<id>:v<version>`.
 */
export type LabProgress = {
  readonly lab: string;
  readonly version: number;
  /** The student's code per file (only files they edited or that were migrated). */
  files: Record<string, string>;
  /** How many hints were revealed. */
  hintsShown: number;
  /** The latest grading report, or null. Cleared when a new lab version refreshes the tests. */
  lastReport: GradeReport | null;
  /** The best score seen with the current tests. */
  bestScore: number;
  maxScore: number;
  /** Set when this record was migrated from an older lab version: which one. */
  migratedFrom: number | null;
};

/** The little of `Storage` we use (localStorage in the page, a Map in tests). */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  readonly length: number;
  key(i: number): string | null;
}

export const PREFIX = 'spf-course:lab:';

/** The storage key of a lab version's progress. */
export function progressKey(lab: string, version: number): string {
  return `${PREFIX}${lab}:v${version}`;
}

function parse(raw: string | null): LabProgress | null {
  if (!raw) return null;
  try {
    const p = JSON.parse(raw) as LabProgress;
    return p && typeof p === 'object' && typeof p.files === 'object' ? p : null;
  } catch {
    return null;
  }
}

/** Every stored version of a lab's progress, newest first. */
function storedVersions(store: KeyValueStore, lab: string): Array<{ version: number; key: string }> {
  const out: Array<{ version: number; key: string }> = [];
  const re = new RegExp(`^${PREFIX.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${lab}:v(\\d+)$`);
  for (let i = 0; i < store.length; i++) {
    const k = store.key(i);
    const m = k ? re.exec(k) : null;
    if (m && k) out.push({ version: Number(m[1]), key: k });
  }
  return out.sort((a, b) => b.version - a.version);
}

function fresh(outline: LabOutline): LabProgress {
  return {
    lab: outline.id,
    version: outline.version,
    files: {},
    hintsShown: 0,
    lastReport: null,
    bestScore: 0,
    maxScore: outline.tests.reduce((s, t) => s + t.points, 0),
    migratedFrom: null,
  };
}

/**
 * Loads a lab's progress for its current version. If only an older version was saved, migrates it: the
 * student's code and revealed hints are kept, the old report and score are dropped because the tests
 * changed. The older record stays in storage untouched, so nothing is ever lost.
 */
export function loadProgress(store: KeyValueStore, outline: LabOutline): LabProgress {
  const current = parse(store.getItem(progressKey(outline.id, outline.version)));
  if (current) return current;
  const older = storedVersions(store, outline.id).find((v) => v.version < outline.version);
  const base = fresh(outline);
  if (older) {
    const old = parse(store.getItem(older.key));
    if (old) {
      const known = new Set(outline.files.map((f) => f.name));
      const files = Object.fromEntries(Object.entries(old.files).filter(([name]) => known.has(name)));
      const migrated = {
        ...base,
        files,
        hintsShown: Math.min(old.hintsShown, outline.hints.length),
        migratedFrom: old.version,
      };
      saveProgress(store, migrated);
      return migrated;
    }
  }
  return base;
}

/** Saves progress (called on every edit). */
export function saveProgress(store: KeyValueStore, p: LabProgress): void {
  store.setItem(progressKey(p.lab, p.version), JSON.stringify(p));
}

/** The newest saved progress of a lab (any version), for the lab index. */
export function latestProgress(store: KeyValueStore, lab: string): LabProgress | null {
  const v = storedVersions(store, lab)[0];
  return v ? parse(store.getItem(v.key)) : null;
}

/** The file format of exported progress. */
export type ProgressExport = {
  readonly format: 'spf-course-progress';
  readonly formatVersion: 1;
  readonly entries: Record<string, LabProgress>;
};

/** Every saved lab record, as a JSON document to download. */
export function exportProgress(store: KeyValueStore): ProgressExport {
  const entries: Record<string, LabProgress> = {};
  for (let i = 0; i < store.length; i++) {
    const k = store.key(i);
    if (k?.startsWith(PREFIX)) {
      const p = parse(store.getItem(k));
      if (p) entries[k] = p;
    }
  }
  return { format: 'spf-course-progress', formatVersion: 1, entries };
}

/** Thrown when an imported file is not exported progress. */
export class ProgressImportError extends Error {
  override name = 'ProgressImportError';
}

/** Parses and validates an exported progress file; throws ProgressImportError if it is not one. */
function parseExport(json: string): Array<[string, LabProgress]> {
  let doc: ProgressExport;
  try {
    doc = JSON.parse(json) as ProgressExport;
  } catch (err) {
    throw new ProgressImportError(
      `the file is not JSON (${(err as Error).message}); choose a file exported from this course`,
    );
  }
  if (
    !doc ||
    doc.format !== 'spf-course-progress' ||
    doc.formatVersion !== 1 ||
    typeof doc.entries !== 'object' ||
    doc.entries === null
  ) {
    throw new ProgressImportError(
      'the file is not spf course progress (format "spf-course-progress", version 1)',
    );
  }
  const entries = Object.entries(doc.entries);
  for (const [k, p] of entries) {
    if (
      !k.startsWith(PREFIX) ||
      !p ||
      typeof p.files !== 'object' ||
      p.files === null ||
      k !== progressKey(p.lab, p.version)
    ) {
      throw new ProgressImportError(`the entry ${JSON.stringify(k)} is malformed; nothing was imported`);
    }
    for (const [name, code] of Object.entries(p.files)) {
      if (typeof code !== 'string') {
        throw new ProgressImportError(`${k}: the code of ${name} is not text; nothing was imported`);
      }
    }
  }
  return entries;
}

/** Saved work an import would replace: one lab version whose stored code differs from the file's. */
export type ImportOverwrite = {
  readonly lab: string;
  readonly version: number;
  /** The files whose saved code the import would replace or remove. */
  readonly files: string[];
};

/**
 * What importing `json` would overwrite, without writing anything: every stored lab record whose code
 * differs from the file's record for the same lab version. Throws ProgressImportError for a bad file.
 */
export function importOverwrites(store: KeyValueStore, json: string): ImportOverwrite[] {
  const out: ImportOverwrite[] = [];
  for (const [k, incoming] of parseExport(json)) {
    const stored = parse(store.getItem(k));
    if (!stored) continue;
    const names = new Set([...Object.keys(stored.files), ...Object.keys(incoming.files)]);
    const files = [...names].filter((n) => n in stored.files && stored.files[n] !== incoming.files[n]);
    if (files.length > 0) out.push({ lab: incoming.lab, version: incoming.version, files: files.sort() });
  }
  return out;
}

/**
 * Restores exported progress: every record in the file replaces the stored one with the same key (other
 * labs are left alone). Validates everything before writing anything, so a bad file changes nothing.
 * The page asks first when `importOverwrites` finds saved work that would be replaced.
 * Returns how many records were restored.
 */
export function importProgress(store: KeyValueStore, json: string): number {
  const entries = parseExport(json);
  for (const [k, p] of entries) store.setItem(k, JSON.stringify(p));
  return entries.length;
}

/** Where a lab's latest full-marks solution is kept: `spf-course:solution:<id>` (any version). */
export const SOLUTION_PREFIX = 'spf-course:solution:';

/** A solution that scored full marks in this browser, which later labs can run on (`LabOutline.buildsOn`). */
export type SavedSolution = {
  readonly lab: string;
  /** The lab version it had full marks in (a later version's tests re-check it as regression tests). */
  readonly version: number;
  readonly files: Readonly<Record<string, string>>;
};

/** Remembers a full-marks solution of `lab` (replacing an older one). */
export function saveFullMarksSolution(store: KeyValueStore, s: SavedSolution): void {
  store.setItem(`${SOLUTION_PREFIX}${s.lab}`, JSON.stringify(s));
}

/** The remembered full-marks solution of `lab`, or null (none, or not a solution record). */
export function loadFullMarksSolution(store: KeyValueStore, lab: string): SavedSolution | null {
  try {
    const s = JSON.parse(store.getItem(`${SOLUTION_PREFIX}${lab}`) ?? 'null') as SavedSolution | null;
    if (!s || typeof s !== 'object' || s.lab !== lab || typeof s.files !== 'object' || s.files === null)
      return null;
    return Object.values(s.files).every((t) => typeof t === 'string') ? s : null;
  } catch {
    return null;
  }
}
