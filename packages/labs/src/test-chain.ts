import type { Lab } from './lab.js';

/**
 * The lab reduced to test `id` and its ancestors, parents first: what must run for that test's result to
 * mean something under xv6-style gating (`spf-grade --test <id>`, the mutation-testing harness).
 */
export function withAncestors(lab: Lab, id: string): Lab {
  const byId = new Map(lab.tests.map((t) => [t.id, t]));
  const tests = [];
  for (let t = byId.get(id); t; t = t.parent === undefined ? undefined : byId.get(t.parent)) tests.unshift(t);
  return { ...lab, tests };
}
