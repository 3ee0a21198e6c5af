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

const SKIP = /^(?:\s|\/\*[\s\S]*?\*\/|\/\/[^\n]*(?:\n|$))*/;
const REWRITTEN_IMPORT = /^\(\s*(['"])data:text\/javascript;base64,[A-Za-z0-9+/=]+\1\s*\)/;

/**
 * The first `import(...)` or `import.meta` in transpiled code that is not a rewritten literal import, if
 * any. A computed import (`import('node:' + name)`) would reach the host's module loader: files, commands,
 * the network, or a package's full namespace; only literal specifiers, which the rewriter checks, may load.
 * (It can misfire on the text `import(` inside a string or comment; the message says so.)
 */
export function dynamicImportAt(js: string): number | undefined {
  for (const m of js.matchAll(/(^|[^.\w$])import\b/g)) {
    const at = (m.index ?? 0) + m[1].length;
    const rest = js.slice(at + 6);
    const after = rest.slice(SKIP.exec(rest)?.[0].length ?? 0);
    if (after.startsWith('.')) return at;
    if (after.startsWith('(') && !REWRITTEN_IMPORT.test(after)) return at;
  }
  return undefined;
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
    const dyn = dynamicImportAt(rewritten);
    if (dyn !== undefined) {
      const line = rewritten.slice(0, dyn).split('\n').length;
      throw new StudentLoadError(
        `${name}:${line}: a dynamic import (import(...) with a computed specifier, or import.meta) is not allowed in lab code; import the allowed packages with ordinary import statements (if the text is in a string or comment, reword it)`,
        name,
        line,
      );
    }
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
      const missing = /does not provide an export named '([^']+)'/.exec(
        err instanceof Error ? err.message : '',
      );
      if (missing) {
        throw new StudentLoadError(
          `${name}: cannot import '${missing[1]}': it is not an export this lab allows (from a package that also holds an answer, lab code may import only types and constants)`,
          name,
        );
      }
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
