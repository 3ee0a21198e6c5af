// Loaded with every lab page: small on purpose. The workbench (and with it CodeMirror and the grader) is
// fetched lazily, after the page has rendered.
for (const root of document.querySelectorAll<HTMLElement>('[data-workbench]')) {
  void import('./workbench.js').then(({ Workbench }) => new Workbench(root).start());
}
