import { autocompletion, type CompletionContext, type CompletionResult } from '@codemirror/autocomplete';
import { type Diagnostic, linter, lintGutter } from '@codemirror/lint';
import type { EditorState, Extension } from '@codemirror/state';
import { hoverTooltip } from '@codemirror/view';
import type { TypeCheckRequest, TypeCheckResponse } from './type-check-protocol.js';

/** The detail of the `spf-types` event the editor fires after each check: null errors if it failed. */
export type TypeStatus = { readonly file: string; readonly errors: number | null };

type Body<K extends TypeCheckRequest['kind']> = Omit<Extract<TypeCheckRequest, { kind: K }>, 'id'>;
type Reply<K extends TypeCheckRequest['kind']> = Extract<TypeCheckResponse, { kind: K }>;

/**
 * The page's side of the TypeScript language service: one worker (type-check-worker.ts), started on first
 * use, so its ~1 MB of compiler loads only after the editor is up and never delays the page.
 */
class TypeCheckClient {
  private worker: Worker | null = null;
  private next = 1;
  private readonly pending = new Map<number, (r: TypeCheckResponse | null) => void>();

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./type-check-worker.ts', import.meta.url), { type: 'module' });
    w.onmessage = (e: MessageEvent<TypeCheckResponse>) => {
      this.pending.get(e.data.id)?.(e.data);
      this.pending.delete(e.data.id);
    };
    w.onerror = (e) => {
      // The editor keeps working without types; the next request starts a fresh worker.
      e.preventDefault();
      for (const done of this.pending.values()) done(null);
      this.pending.clear();
      w.terminate();
      this.worker = null;
    };
    this.worker = w;
    return w;
  }

  /** Sends a request; resolves with the worker's answer, or null if the worker failed. */
  ask<K extends TypeCheckRequest['kind']>(body: Body<K>): Promise<Reply<K> | null> {
    const id = this.next++;
    const w = this.start();
    return new Promise((resolve) => {
      this.pending.set(id, (r) => resolve(r && r.kind === body.kind ? (r as Reply<K>) : null));
      w.postMessage({ ...body, id });
    });
  }
}

let client: TypeCheckClient | null = null;
const shared = () => {
  client ??= new TypeCheckClient();
  return client;
};

/** CodeMirror's name for a TypeScript completion kind (it picks the icon). */
function completionType(kind: string): string {
  if (kind === 'function' || kind === 'local function') return 'function';
  if (kind === 'method') return 'method';
  if (kind === 'property' || kind === 'getter' || kind === 'setter') return 'property';
  if (kind === 'const') return 'constant';
  if (kind === 'let' || kind === 'var' || kind === 'local var' || kind === 'parameter') return 'variable';
  if (kind === 'class') return 'class';
  if (kind === 'interface') return 'interface';
  if (kind === 'type' || kind === 'alias') return 'type';
  if (kind === 'enum') return 'enum';
  if (kind === 'keyword') return 'keyword';
  if (kind === 'module') return 'namespace';
  return 'text';
}

/**
 * Type errors as you type (underlined, with the message on hover and a marker in the gutter), completion
 * and hover types from the TypeScript language service, for one file of the lab. `files` returns the
 * current text of every lab file, so imports between them are checked too.
 */
export function typeChecking(file: string, files: () => Record<string, string>): Extension {
  const all = (state: EditorState) => ({ ...files(), [file]: state.doc.toString() });
  const diagnostics = linter(
    async (view) => {
      const r = await shared().ask<'diagnostics'>({ kind: 'diagnostics', files: all(view.state), file });
      const errors = r ? r.diagnostics.filter((d) => d.severity === 'error').length : null;
      // The workbench shows the count in its status bar (and the e2e tests wait for it).
      view.dom.dispatchEvent(
        new CustomEvent<TypeStatus>('spf-types', { bubbles: true, detail: { file, errors } }),
      );
      const len = view.state.doc.length;
      return (r?.diagnostics ?? []).map(
        (d): Diagnostic => ({
          from: Math.min(d.from, len),
          to: Math.min(Math.max(d.to, d.from), len),
          severity: d.severity,
          source: 'TypeScript',
          message: d.message,
        }),
      );
    },
    { delay: 300 },
  );
  const complete = async (ctx: CompletionContext): Promise<CompletionResult | null> => {
    const word = ctx.matchBefore(/[\w$]*/);
    const afterDot =
      ctx.state.sliceDoc(Math.max(0, (word?.from ?? ctx.pos) - 1), word?.from ?? ctx.pos) === '.';
    if (!ctx.explicit && !afterDot && (!word || word.from === word.to)) return null;
    const r = await shared().ask<'completions'>({
      kind: 'completions',
      files: all(ctx.state),
      file,
      pos: ctx.pos,
    });
    if (!r || r.entries.length === 0) return null;
    return {
      from: r.from,
      options: r.entries.map((e) => ({ label: e.label, type: completionType(e.kind) })),
      validFor: /^[\w$]*$/,
    };
  };
  const hover = hoverTooltip(async (view, pos) => {
    const r = await shared().ask<'quickInfo'>({ kind: 'quickInfo', files: all(view.state), file, pos });
    const info = r?.info;
    if (!info) return null;
    return {
      pos: info.from,
      end: info.to,
      above: true,
      create() {
        const dom = document.createElement('div');
        dom.className = 'cm-type-info';
        const type = document.createElement('code');
        type.textContent = info.type;
        dom.append(type);
        if (info.doc) {
          const doc = document.createElement('div');
          doc.className = 'cm-type-doc';
          doc.textContent = info.doc;
          dom.append(doc);
        }
        return { dom };
      },
    };
  });
  // `override` replaces the JavaScript mode's own word completion: the language service knows more.
  return [diagnostics, lintGutter(), autocompletion({ override: [complete] }), hover];
}
