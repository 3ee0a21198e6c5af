import { HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import type { Extension } from '@codemirror/state';
import { EditorView } from '@codemirror/view';
import { tags as t } from '@lezer/highlight';

// The editor's colours follow the site's theme. Starlight sets <html data-theme="light|dark"> (from the
// theme picker, or from the OS when it is on "auto") and the workbench's stylesheet
// (src/components/Workbench.astro) defines the --wb-code-* variables for both, so one editor theme serves
// both and switches without rebuilding the editor. Every text colour there meets WCAG AA (4.5:1) on the
// editor's background and on the active line; the Chromium e2e test measures it in both themes.

const v = (name: string) => `var(--wb-code-${name})`;

/** The editor chrome: background, text, caret, gutters, active line, selection, tooltips. */
const chrome = EditorView.theme({
  '&': { color: v('fg'), backgroundColor: v('bg') },
  '.cm-content': { caretColor: v('fg') },
  '.cm-cursor, .cm-dropCursor': { borderLeftColor: v('fg') },
  '.cm-gutters': {
    backgroundColor: v('gutter-bg'),
    color: v('gutter-fg'),
    borderRight: `1px solid ${v('border')}`,
  },
  '.cm-activeLine': { backgroundColor: v('active-bg') },
  '.cm-activeLineGutter': { backgroundColor: v('active-bg'), color: v('fg') },
  '&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, .cm-content ::selection':
    { backgroundColor: v('selection-bg') },
  '.cm-matchingBracket, &.cm-focused .cm-matchingBracket': {
    backgroundColor: v('bracket-bg'),
    color: v('fg'),
  },
  '.cm-searchMatch': { backgroundColor: v('bracket-bg') },
  '.cm-panels, .cm-tooltip': {
    backgroundColor: v('gutter-bg'),
    color: v('fg'),
    border: `1px solid ${v('border')}`,
  },
  '.cm-tooltip-autocomplete > ul > li[aria-selected]': { backgroundColor: v('selection-bg'), color: v('fg') },
  '.cm-type-info': { padding: '0.3rem 0.5rem', maxWidth: '40rem', whiteSpace: 'pre-wrap' },
  '.cm-type-info code': {
    fontFamily: 'var(--__sl-font-mono, monospace)',
    background: 'none',
    color: v('fg'),
  },
  '.cm-type-doc': { marginTop: '0.3rem', borderTop: `1px solid ${v('border')}`, paddingTop: '0.3rem' },
  '.cm-diagnostic': { color: v('fg') },
  '.cm-foldPlaceholder': {
    backgroundColor: v('gutter-bg'),
    color: v('fg'),
    border: `1px solid ${v('border')}`,
  },
});

/** Syntax colours, by Lezer highlighting tag. */
const highlight = HighlightStyle.define([
  {
    tag: [t.keyword, t.controlKeyword, t.moduleKeyword, t.operatorKeyword, t.definitionKeyword],
    color: v('keyword'),
  },
  { tag: [t.string, t.special(t.string), t.regexp], color: v('string') },
  { tag: [t.comment, t.lineComment, t.blockComment, t.docComment], color: v('comment'), fontStyle: 'italic' },
  { tag: [t.number, t.bool, t.null, t.atom, t.literal], color: v('number') },
  { tag: [t.typeName, t.className, t.namespace], color: v('type') },
  {
    tag: [t.function(t.variableName), t.function(t.propertyName), t.definition(t.function(t.variableName))],
    color: v('function'),
  },
  { tag: [t.propertyName, t.definition(t.propertyName)], color: v('property') },
  { tag: [t.variableName, t.definition(t.variableName), t.self], color: v('fg') },
  { tag: [t.operator, t.punctuation, t.bracket, t.separator], color: v('fg') },
  { tag: t.invalid, color: v('invalid') },
]);

/** The editor's theme for both site themes (see the note at the top of this file). */
export const editorTheme: Extension = [chrome, syntaxHighlighting(highlight)];
