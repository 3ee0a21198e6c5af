import { StudentLoadError } from './lab-errors.js';
import type { StudentModules } from './lab.js';

/** Module namespaces student code may import, by specifier. */
export type ModuleMap = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

const REGISTRY = Symbol.for('spf.labs.modules');
type Registry = Record<string, ModuleMap>;
let runCounter = 0;

/** The URL prefix of student files in stack traces (set with `//# sourceURL`). */
export const STUDENT_URL_PREFIX = 'spf-lab:///';

function registry(): Registry {
  const g = globalThis as unknown as Record<symbol, Registry | undefined>;
  g[REGISTRY] ??= {};
  return g[REGISTRY] as Registry;
}

function dataUrl(js: string): string {
  const bytes = new TextEncoder().encode(js);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `data:text/javascript;base64,${btoa(bin)}`;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** A module that re-exports the named exports of a host module namespace registered for this run. */
function shimSource(runId: string, specifier: string, ns: Readonly<Record<string, unknown>>): string {
  const lines = [
    `const m = globalThis[Symbol.for('spf.labs.modules')][${JSON.stringify(runId)}][${JSON.stringify(specifier)}];`,
  ];
  for (const name of Object.keys(ns)) {
    if (IDENT.test(name) && name !== 'default') lines.push(`export const ${name} = m.${name};`);
  }
  return lines.join('\n');
}

/** Finds the student file a relative specifier (`./walk.js`, `./walk`, `./walk.ts`) names. */
function resolveRelative(spec: string, files: ReadonlyMap<string, string>): string | undefined {
  const base = spec.replace(/^\.\//, '').replace(/\.(js|ts|mjs)$/, '');
  for (const name of files.keys()) if (name.replace(/\.(ts|js)$/, '') === base) return name;
  return undefined;
}

/** The student file behind each module URL of the latest load (stacks may show the data: URL itself). */
const urlFiles = new Map<string, string>();

/** Line and file of the first student frame in an error's stack, if any. */
export function studentLocation(err: unknown): { file: string; line: number } | undefined {
  const stack = err instanceof Error ? String(err.stack ?? '') : '';
  const m = /spf-lab:\/\/\/(?:[\w-]+\/)?([^\s:)]+):(\d+):\d+/.exec(stack);
  if (m) return { file: m[1], line: Number(m[2]) };
  for (const d of stack.matchAll(/(data:text\/javascript;base64,[A-Za-z0-9+/=]+):(\d+):\d+/g)) {
    const file = urlFiles.get(d[1]);
    if (file) return { file, line: Number(d[2]) };
  }
  return undefined;
}

/**
 * Loads transpiled student files as real ES modules (from `data:` URLs, in Node and in browser workers
 * alike). Imports of host packages are rewritten to shims over `modules`, imports between student files to
 * the other file's module; anything else is refused with a {@link StudentLoadError} naming what is allowed.
 */
export async function loadStudentModules(
  files: ReadonlyMap<string, string>,
  modules: ModuleMap,
): Promise<StudentModules> {
  const runId = `run${++runCounter}`;
  urlFiles.clear();
  registry()[runId] = modules;
  const urls = new Map<string, string>();
  const shims = new Map<string, string>();
  const loading = new Set<string>();
  const urlOf = (name: string): string => {
    const done = urls.get(name);
    if (done) return done;
    if (loading.has(name)) {
      throw new StudentLoadError(`${name}: circular imports between lab files are not supported`, name);
    }
    loading.add(name);
    const js = files.get(name) ?? '';
    const rewritten = js.replace(
      /(\bfrom\s*|\bimport\s*\(?\s*)(['"])([^'"\n]+)\2/g,
      (_all, lead: string, q: string, spec: string) => {
        let target: string;
        if (spec.startsWith('.')) {
          const file = resolveRelative(spec, files);
          if (!file) {
            throw new StudentLoadError(
              `${name}: cannot import '${spec}': no lab file of that name (files: ${[...files.keys()].join(', ')})`,
              name,
            );
          }
          target = urlOf(file);
        } else {
          const ns = modules[spec];
          if (!ns) {
            const allowed = Object.keys(modules).join(', ') || 'nothing';
            throw new StudentLoadError(`${name}: cannot import '${spec}'; this lab allows ${allowed}`, name);
          }
          target = shims.get(spec) ?? dataUrl(shimSource(runId, spec, ns));
          shims.set(spec, target);
        }
        return `${lead}${q}${target}${q}`;
      },
    );
    const url = dataUrl(`${rewritten}\n//# sourceURL=${STUDENT_URL_PREFIX}${runId}/${name}`);
    loading.delete(name);
    urls.set(name, url);
    urlFiles.set(url, name);
    return url;
  };
  const out: Record<string, Readonly<Record<string, unknown>>> = {};
  try {
    for (const name of files.keys()) await importOne(name);
  } finally {
    delete registry()[runId];
  }
  return out;

  async function importOne(name: string): Promise<void> {
    const url = urlOf(name);
    try {
      out[name] = (await import(/* @vite-ignore */ url)) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof StudentLoadError) throw err;
      const loc = studentLocation(err);
      const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      throw new StudentLoadError(
        `${loc ? `${loc.file}:${loc.line}: ` : `${name}: `}loading the module threw ${msg}`,
        loc?.file ?? name,
        loc?.line,
      );
    }
  }
}
