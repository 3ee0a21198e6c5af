import { javascript } from '@codemirror/lang-javascript';
import { EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { basicSetup } from 'codemirror';
import { editorTheme } from './editor-theme.js';
import { typeChecking } from './type-check.js';

/** The keys that run the tests from the editor (Mod is Ctrl, or Cmd on a Mac). */
export const RUN_KEYS = ['Mod-Enter'] as const;

/**
 * A CodeMirror 6 editor with TypeScript highlighting, one document (state) per lab file, type errors as you
 * type, completion and hover types (the TypeScript language service in a worker, see type-check.ts), long
 * lines wrapped, colours that follow the site's theme, and Ctrl-Enter (Cmd-Enter on a Mac) to run the tests.
 */
export class LabEditor {
  private readonly view: EditorView;
  private readonly states = new Map<string, EditorState>();
  private current: string;

  constructor(
    parent: HTMLElement,
    files: Record<string, string>,
    first: string,
    private readonly onChange: (file: string, text: string) => void,
    private readonly onRun: () => void = () => {},
  ) {
    for (const [name, text] of Object.entries(files)) this.states.set(name, this.makeState(name, text));
    this.current = first;
    this.view = new EditorView({ state: this.states.get(first), parent });
  }

  private makeState(name: string, text: string): EditorState {
    return EditorState.create({
      doc: text,
      extensions: [
        basicSetup,
        javascript({ typescript: true }),
        editorTheme,
        EditorView.lineWrapping,
        typeChecking(name, () => this.allTexts()),
        Prec.highest(
          keymap.of(
            RUN_KEYS.map((key) => ({
              key,
              run: () => {
                this.onRun();
                return true;
              },
            })),
          ),
        ),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) this.onChange(name, u.state.doc.toString());
        }),
      ],
    });
  }

  /** Switches the visible tab, keeping each file's undo history and selection. */
  show(file: string): void {
    if (file === this.current) return;
    this.states.set(this.current, this.view.state);
    this.current = file;
    const next = this.states.get(file);
    if (next) this.view.setState(next);
  }

  /** Every file's current text. */
  private allTexts(): Record<string, string> {
    return Object.fromEntries([...this.states.keys()].map((f) => [f, this.text(f)]));
  }

  get file(): string {
    return this.current;
  }

  text(file: string): string {
    if (file === this.current) return this.view.state.doc.toString();
    return this.states.get(file)?.doc.toString() ?? '';
  }

  /** Replaces a file's text (reset to starter, import). */
  setText(file: string, text: string): void {
    if (file === this.current) {
      this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text } });
    } else {
      this.states.set(file, this.makeState(file, text));
      this.onChange(file, text);
    }
  }

  /** Moves the cursor to a 1-based line and focuses the editor (used for error lines). */
  goToLine(file: string, line: number): void {
    this.show(file);
    const doc = this.view.state.doc;
    const l = doc.line(Math.max(1, Math.min(line, doc.lines)));
    this.view.dispatch({ selection: { anchor: l.from, head: l.to }, scrollIntoView: true });
    this.view.focus();
  }
}
