import type { Page } from '@spf/pagetable';
import {
  Errno,
  MADV_DONTFORK,
  MADV_FREE,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { boot } from './system.js';
import type { UserContext } from './user-context.js';

const A = 0x5000_0000; // 2 MiB aligned: one page table covers the first 512 pages
const P = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;

/** The page mapped at `addr` in the calling process. */
function pageAt(u: UserContext, addr: number): Page {
  const pa = u.process.pt.translate(addr);
  if (pa === null) throw new Error(`nothing mapped at 0x${addr.toString(16)}`);
  return u.system.mem.page(Math.floor(pa / P));
}

describe('fork out of memory', () => {
  // 0 free frames: no page directory for the child (mm_alloc_pgd); 2: a pgd and a PUD table, then no
  // PMD table for copy_page_range. (@spf/vma's dup-mmap-enomem test covers a failure after PTEs were copied.)
  for (const left of [0, 2]) {
    it(`returns ENOMEM with ${left} free frames; the parent keeps running with its memory intact`, () => {
      // 1 MiB: fewer frames than the 512 pages of the region, so the parent can fill memory exactly (which
      // needs overcommit: under the default heuristic a 2 MiB writable mapping on a 1 MiB machine is ENOMEM).
      const sys = boot({ cpus: 2, memory: 1024 * 1024, overcommit: { mode: 'always' } });
      const out: string[] = [];
      sys.spawnProcess('hog', function* (u) {
        const r = yield* u.mmap(A, 512 * P, RW, ANON);
        if (!r.ok) throw new Error(`mmap errno ${r.errno}`);
        let n = 0;
        while (sys.mem.freeCount > left) yield* u.store8(A + n * P, n++ & 0xff);
        const free = sys.mem.freeCount;
        const counts = () => [
          pageAt(u, A).refcount,
          pageAt(u, A).mapcount,
          pageAt(u, A + (n - 1) * P).mapcount,
        ];
        const before = { counts: counts(), maps: u.maps(), rss: [...u.process.mm.rss] };
        const f = yield* u.fork(function* (c) {
          yield* c.store8(A, 1);
        }, 1);
        out.push(f.ok ? `fork ok ${f.value}` : `fork errno ${f.errno}`);
        // Every frame and reference the child took is back; the parent's mm is as it was.
        expect(sys.mem.freeCount).toBe(free);
        expect({ counts: counts(), maps: u.maps(), rss: [...u.process.mm.rss] }).toEqual(before);
        expect(sys.invariantProblems()).toEqual([]);
        let intact = true;
        for (let i = 0; i < n; i++) if ((yield* u.load8(A + i * P)) !== (i & 0xff)) intact = false;
        out.push(`data intact: ${intact}`);
        yield* u.store8(A, 0xee); // the page is exclusive again: written in place
        out.push(`write: ${yield* u.load8(A)}`);
        // With memory given back, fork works again.
        expect(yield* u.munmap(A + 64 * P, (n - 64) * P)).toEqual({ ok: true, value: 0 });
        const g = yield* u.fork(function* (c) {
          out.push(`child reads ${yield* c.load8(A)} ${yield* c.load8(A + 63 * P)}`);
        }, 1);
        if (!g.ok) throw new Error(`second fork errno ${g.errno}`);
        yield* u.wait(g.value);
      });
      const res = sys.run(); // the mm invariants and the leak check run at the end
      expect(res.failure?.message).toBeUndefined();
      expect(res.ok).toBe(true);
      expect(out).toEqual([
        `fork errno ${Errno.ENOMEM}`,
        'data intact: true',
        'write: 238',
        'child reads 238 63',
      ]);
      expect(res.log).toEqual([]); // like Linux, a failed fork logs nothing
      // The failed fork used no pid: the child of the second fork is pid 2.
      expect(res.processes.map((p) => p.pid)).toEqual([1, 2]);
    });
  }
});

describe('madvise advice seen by a fork child', () => {
  it('MADV_DONTFORK: the child has no mapping there and faults SIGSEGV MAPERR', () => {
    const sys = boot({ cpus: 2 });
    const out: string[] = [];
    sys.spawnProcess('parent', function* (u) {
      yield* u.mmap(A, 3 * P, RW, ANON);
      for (let i = 0; i < 3; i++) yield* u.store8(A + i * P, 10 + i);
      expect(yield* u.madvise(A + P, P, MADV_DONTFORK)).toEqual({ ok: true, value: 0 });
      const f = yield* u.fork(function* (c) {
        out.push(`child maps ${c.maps().trim().split('\n').length}`);
        out.push(`child reads ${yield* c.load8(A)} ${yield* c.load8(A + 2 * P)}`);
        yield* c.load8(A + P); // killed here
        out.push('not reached');
      }, 1);
      if (!f.ok) throw new Error(`fork errno ${f.errno}`);
      const w = yield* u.wait(f.value);
      if (!w.ok) throw new Error(`wait errno ${w.errno}`);
      const st = w.value;
      out.push(st.kind === 'killed' ? `child killed by ${st.signal.signal} ${st.signal.code}` : st.kind);
      out.push(`parent reads ${yield* u.load8(A + P)}`);
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(out).toEqual([
      'child maps 2',
      'child reads 10 12',
      'child killed by SIGSEGV MAPERR',
      'parent reads 11',
    ]);
  });

  it('MADV_WIPEONFORK: the child reads zeros where the parent wrote data; its writes stay its own', () => {
    const sys = boot({ cpus: 2 });
    const out: string[] = [];
    sys.spawnProcess('parent', function* (u) {
      yield* u.mmap(A, 2 * P, RW, ANON);
      yield* u.store8(A, 0x5a);
      yield* u.store8(A + P, 0x5b);
      expect(yield* u.madvise(A, P, MADV_WIPEONFORK)).toEqual({ ok: true, value: 0 });
      const f = yield* u.fork(function* (c) {
        out.push(`child reads ${yield* c.load8(A)} ${yield* c.load8(A + P)}`);
        yield* c.store8(A, 7);
      }, 1);
      if (!f.ok) throw new Error(`fork errno ${f.errno}`);
      yield* u.wait(f.value);
      out.push(`parent reads ${yield* u.load8(A)} ${yield* u.load8(A + P)}`);
    });
    const res = sys.run();
    expect(res.ok).toBe(true);
    expect(out).toEqual([`child reads 0 ${0x5b}`, `parent reads ${0x5a} ${0x5b}`]);
  });
});

describe('madvise through UserContext', () => {
  it('MADV_RANDOM splits the maps lines, MADV_NORMAL merges them; MADV_FREE keeps the data', () => {
    const sys = boot();
    const out: string[][] = [];
    let freed = -1;
    sys.spawnProcess('advise', function* (u) {
      yield* u.mmap(A, 4 * P, RW, ANON);
      yield* u.store8(A + P, 0x42);
      expect(yield* u.madvise(A + P, 2 * P, MADV_RANDOM)).toEqual({ ok: true, value: 0 });
      out.push(u.maps().trim().split('\n'));
      expect(yield* u.madvise(A, 4 * P, MADV_NORMAL)).toEqual({ ok: true, value: 0 });
      out.push(u.maps().trim().split('\n'));
      expect(yield* u.madvise(A, 4 * P, MADV_FREE)).toEqual({ ok: true, value: 0 });
      freed = yield* u.load8(A + P);
    });
    expect(sys.run().ok).toBe(true);
    expect(out.map((l) => l.length)).toEqual([3, 1]);
    expect(out[0][1]).toMatch(/^50001000-50003000 rw-p /);
    expect(freed).toBe(0x42);
  });
});
