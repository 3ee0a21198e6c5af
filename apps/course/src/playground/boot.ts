// Loaded with the playground page: small on purpose. The editor, the worker and the result panels are fetched
// lazily, after the page has rendered.
for (const root of document.querySelectorAll<HTMLElement>('[data-playground]')) {
  void import('./playground-ui.js').then(({ Playground }) => new Playground(root).start());
}
