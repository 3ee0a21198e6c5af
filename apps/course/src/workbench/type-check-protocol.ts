/** Messages between the editor and the TypeScript language-service worker (type-check-worker.ts). */

/** A diagnostic in one file, as character offsets into its text. */
export type TypeDiagnostic = {
  readonly from: number;
  readonly to: number;
  readonly severity: 'error' | 'warning' | 'info';
  readonly message: string;
};

/** One completion entry at a position. */
export type TypeCompletion = {
  readonly label: string;
  /** TypeScript's ScriptElementKind (`function`, `const`, `property`, `interface`, …). */
  readonly kind: string;
  /** The entry's type, for the entry under the cursor only (`detail` of CodeMirror's completion). */
  readonly detail?: string;
};

/** Hover information at a position: the type line and the documentation. */
export type TypeQuickInfo = {
  readonly from: number;
  readonly to: number;
  readonly type: string;
  readonly doc: string;
};

export type TypeCheckRequest =
  | {
      readonly id: number;
      readonly kind: 'diagnostics';
      readonly files: Record<string, string>;
      readonly file: string;
    }
  | {
      readonly id: number;
      readonly kind: 'completions';
      readonly files: Record<string, string>;
      readonly file: string;
      readonly pos: number;
    }
  | {
      readonly id: number;
      readonly kind: 'quickInfo';
      readonly files: Record<string, string>;
      readonly file: string;
      readonly pos: number;
    };

export type TypeCheckResponse =
  | { readonly id: number; readonly kind: 'diagnostics'; readonly diagnostics: TypeDiagnostic[] }
  | {
      readonly id: number;
      readonly kind: 'completions';
      readonly from: number;
      readonly entries: TypeCompletion[];
    }
  | { readonly id: number; readonly kind: 'quickInfo'; readonly info: TypeQuickInfo | null }
  | { readonly id: number; readonly kind: 'failed'; readonly message: string };
