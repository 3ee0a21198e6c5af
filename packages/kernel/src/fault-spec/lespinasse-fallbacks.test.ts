import { type LespinasseCounters, lespinasseSpf } from '@spf/fault-spec';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from '../system.js';
import type { UserProgram } from '../user-context.js';

// Where lespinasseSpf gives up and the classic path takes over, with the series' abort reasons; and what
// the user sees is the classic path's answer either way.

const A = 0x5000_0000;
const P = 4096;
const RW = PROT_READ | PROT_WRITE;

function run(program: UserProgram, opts: { pteSpecial?: boolean; singleThreadShortcut?: boolean } = {}) {
  const sys = boot({
    memory: 16 * 1024 * 1024,
    pteSpecial: opts.pteSpecial,
    faultHandler: lespinasseSpf({ singleThreadShortcut: opts.singleThreadShortcut }),
  });
  const proc = sys.spawnProcess('fb', program);
  sys.run();
  return { counters: sys.faultHandler.counters as LespinasseCounters, proc, log: sys.log };
}

describe('lespinasseSpf falls back to the classic path', () => {
  it('for a shared (shmem) mapping: SPF_ABORT_NO_SPECULATE, and the page is still mapped', () => {
    const seen: number[] = [];
    const { counters } = run(function* (u) {
      yield* u.mmap(A, P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED);
      yield* u.store8(A, 7);
      seen.push(yield* u.load8(A));
    });
    expect(seen).toEqual([7]);
    expect(counters.SPF_ABORT_NO_SPECULATE).toBe(1);
    expect(counters.spf_abort).toBe(counters.spf_attempt);
  });

  it('for an address no VMA covers (SPF_ABORT_UNMAPPED) and a write to a read-only VMA (SPF_ABORT_ACCESS_ERROR): the classic path sends SIGSEGV', () => {
    const a = run(function* (u) {
      yield* u.store8(A, 1);
    });
    expect(a.counters.SPF_ABORT_UNMAPPED).toBe(1);
    expect(a.proc.status).toMatchObject({ kind: 'killed' });
    const b = run(function* (u) {
      yield* u.mmap(A, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      yield* u.store8(A, 1);
    });
    expect(b.counters.SPF_ABORT_ACCESS_ERROR).toBe(1);
    expect(b.proc.status).toMatchObject({ kind: 'killed' });
  });

  it('a read of a fresh VMA maps the zero page speculatively; the first write aborts for the anon_vma (SPF_ABORT_ANON_VMA)', () => {
    const { counters } = run(function* (u) {
      yield* u.mmap(A, 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      yield* u.load8(A); // pmd missing: SPF_ABORT_PMD, the classic fault builds the tables
      yield* u.load8(A + P); // zero page, speculatively
      yield* u.store8(A + 2 * P, 1); // needs an anon_vma: abort
      yield* u.store8(A + 3 * P, 1); // speculative
      yield* u.store8(A + P, 2); // COW of the zero page (wp_page_copy), speculative
    });
    expect(counters).toMatchObject({
      spf_attempt: 5,
      spf_abort: 2,
      SPF_ABORT_PUD: 1,
      SPF_ABORT_ANON_VMA: 1,
      SPF_ATTEMPT_ANON: 3,
      SPF_ATTEMPT_WP: 1,
    });
  });

  it('runs without pte_special (question 4 does not arise: vm_normal_page reads the on-stack copy)', () => {
    const seen: number[] = [];
    const { counters } = run(
      function* (u) {
        yield* u.mmap(A, 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        yield* u.store8(A, 1);
        yield* u.load8(A + P);
        yield* u.store8(A + P, 5);
        seen.push(yield* u.load8(A + P));
      },
      { pteSpecial: false },
    );
    expect(seen).toEqual([5]);
    expect(counters.spf_attempt - counters.spf_abort).toBe(2);
  });

  it('singleThreadShortcut: a process with one thread never tries the speculative path', () => {
    const { counters } = run(
      function* (u) {
        yield* u.mmap(A, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
        yield* u.store8(A, 1);
        yield* u.store8(A + P, 1);
      },
      { singleThreadShortcut: true },
    );
    expect(counters.spf_attempt).toBe(0);
  });
});
