// The usage example of README.md, kept here so it is known to work.
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { expect, it } from 'vitest';
import { boot } from './index.js';

it('README example', () => {
  const seen: unknown[] = [];
  const system = boot({ cpus: 2 }); // timed policy, 256 MiB, classic fault handler, zero page on
  system.spawnProcess('demo', function* (u) {
    const r = yield* u.mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) return;
    yield* u.store8(r.value, 42); // #PF -> do_anonymous_page -> retry the store
    const pid = yield* u.fork(function* (child) {
      yield* child.store8(r.value, 7); // copy-on-write
    }, 1);
    if (!pid.ok) return; // ENOMEM: no memory for the child's page tables
    yield* u.wait(pid.value);
    console.log(yield* u.load8(r.value), u.rusage()); // 42 { minflt: 1, majflt: 0 }
    seen.push(yield* u.load8(r.value), u.rusage());
    yield* u.load8(r.value + 8192); // no VMA: SIGSEGV kills the process
  });
  const result = system.run(); // the mm invariants and a leak check run at the end
  console.log(result.log); // [ 'demo[1]: killed by SIGSEGV (MAPERR) at 0x7ffff7fff000' ]
  expect(seen).toEqual([42, { minflt: 1, majflt: 0 }]);
  expect(result.ok).toBe(true);
  expect(result.log).toEqual(['demo[1]: killed by SIGSEGV (MAPERR) at 0x7ffff7fff000']);
});
