import ts from 'typescript';
import type { TypeCheckRequest, TypeCheckResponse, TypeCompletion } from './type-check-protocol.js';

// The TypeScript language service for the workbench's editor (run in type-check-worker.ts, so that
// type-checking never blocks typing). It sees the lab's files as /lab/<name>, the ES2022 standard library,
// and the declarations (dist/**/*.d.ts) of the packages lab code imports, so errors, completion and hover
// types are those of the real APIs. No student code runs here: the language service only parses and checks.

const LIBS = import.meta.glob(
  [
    '../../node_modules/typescript/lib/lib.es5.d.ts',
    '../../node_modules/typescript/lib/lib.es20*.d.ts',
    '../../node_modules/typescript/lib/lib.decorators*.d.ts',
    '!../../node_modules/typescript/lib/lib.*.full.d.ts',
  ],
  { query: '?raw', import: 'default', eager: true, exhaustive: true },
) as Record<string, string>;

/** The packages a lab's code may import (those @spf/labs builds its labs on). */
const DECLARATIONS = import.meta.glob(
  '../../../../packages/{machine,pagetable,locks,vma,fault-classic,fault-spec,file-backed}/dist/**/*.d.ts',
  {
    query: '?raw',
    import: 'default',
    eager: true,
  },
) as Record<string, string>;

const OPTIONS: ts.CompilerOptions = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts'],
  types: [],
  noEmit: true,
  skipLibCheck: true,
  isolatedModules: true,
  verbatimModuleSyntax: false,
};

/** Every file of the virtual file system: path -> text. */
const files = new Map<string, string>();
for (const [path, text] of Object.entries(LIBS))
  files.set(`/lib/${path.slice(path.lastIndexOf('/') + 1)}`, text);
for (const [path, text] of Object.entries(DECLARATIONS)) {
  const m = /packages\/([\w-]+)\/dist\/(.*)$/.exec(path);
  if (m) files.set(`/node_modules/@spf/${m[1]}/dist/${m[2]}`, text);
}
for (const pkg of ['machine', 'pagetable', 'locks', 'vma', 'fault-classic', 'fault-spec', 'file-backed']) {
  files.set(
    `/node_modules/@spf/${pkg}/package.json`,
    JSON.stringify({
      name: `@spf/${pkg}`,
      type: 'module',
      types: './dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts' } },
    }),
  );
}
const directories = new Set<string>();
const addDirs = (path: string) => {
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) directories.add(path.slice(0, i));
};
for (const path of files.keys()) addDirs(path);
directories.add('/lab');

/** The lab's files by name, with a version per file that changes when its text does. */
const labFiles = new Map<string, { text: string; version: number }>();
const labPath = (name: string) => `/lab/${name}`;

function update(sources: Record<string, string>): void {
  for (const [name, text] of Object.entries(sources)) {
    const cur = labFiles.get(name);
    if (!cur) labFiles.set(name, { text, version: 1 });
    else if (cur.text !== text) labFiles.set(name, { text, version: cur.version + 1 });
  }
  for (const name of [...labFiles.keys()]) if (!(name in sources)) labFiles.delete(name);
}

function read(path: string): string | undefined {
  if (path.startsWith('/lab/')) return labFiles.get(path.slice(5))?.text;
  return files.get(path);
}

const host: ts.LanguageServiceHost = {
  getCompilationSettings: () => OPTIONS,
  getScriptFileNames: () => [...labFiles.keys()].map(labPath),
  getScriptVersion: (path) =>
    String(path.startsWith('/lab/') ? (labFiles.get(path.slice(5))?.version ?? 0) : 0),
  getScriptSnapshot: (path) => {
    const text = read(path);
    return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
  },
  getCurrentDirectory: () => '/lab',
  getDefaultLibFileName: () => '/lib/lib.es2022.d.ts',
  fileExists: (path) => read(path) !== undefined,
  readFile: read,
  directoryExists: (dir) => directories.has(dir.replace(/\/$/, '')),
  getDirectories: () => [],
};

const service = ts.createLanguageService(host, ts.createDocumentRegistry());
const SEVERITY = { 0: 'warning', 1: 'error', 2: 'info', 3: 'info' } as const;

/** Answers one request of the editor (see type-check-protocol.ts). */
export function handleTypeCheck(req: TypeCheckRequest): TypeCheckResponse {
  update(req.files);
  const path = labPath(req.file);
  if (req.kind === 'diagnostics') {
    const all = [...service.getSyntacticDiagnostics(path), ...service.getSemanticDiagnostics(path)];
    return {
      id: req.id,
      kind: 'diagnostics',
      diagnostics: all.map((d) => ({
        from: d.start ?? 0,
        to: (d.start ?? 0) + (d.length ?? 0),
        severity: SEVERITY[d.category],
        message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
      })),
    };
  }
  if (req.kind === 'completions') {
    const info = service.getCompletionsAtPosition(path, req.pos, {
      includeCompletionsWithInsertText: true,
      includeCompletionsForModuleExports: false,
    });
    const text = labFiles.get(req.file)?.text ?? '';
    let from = req.pos;
    while (from > 0 && /[\w$]/.test(text[from - 1] ?? '')) from--;
    const entries: TypeCompletion[] = (info?.entries ?? [])
      .slice()
      .sort((a, b) => a.sortText.localeCompare(b.sortText) || a.name.localeCompare(b.name))
      .slice(0, 300)
      .map((e) => ({ label: e.name, kind: e.kind }));
    return { id: req.id, kind: 'completions', from, entries };
  }
  const q = service.getQuickInfoAtPosition(path, req.pos);
  return {
    id: req.id,
    kind: 'quickInfo',
    info: q
      ? {
          from: q.textSpan.start,
          to: q.textSpan.start + q.textSpan.length,
          type: ts.displayPartsToString(q.displayParts),
          doc: ts.displayPartsToString(q.documentation),
        }
      : null,
  };
}
