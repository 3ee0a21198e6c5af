import { type DufourSpfHandler, dufourSpf, type LespinasseSpfHandler, lespinasseSpf } from '@spf/fault-spec';
import type { FaultHandlerFactory } from '@spf/fault-classic';
import type { Kernel } from '@spf/machine';
import {
  errnoName,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  type VmFileRelease,
} from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { O_CREAT, O_RDWR, O_TRUNC, POSIX_FADV_DONTNEED } from '../file-syscalls.js';
import { boot, type System } from '../system.js';
import type { UserContext } from '../user-context.js';

/**
 * Issue 14 item 5: speculative file faults in Dufour's design (`fileVmas`, the 2019 proposal) and
 * Lespinasse's (the 2021 RFC), under the timed policy: what each finishes speculatively, what it leaves to
 * the classic path, and that the user always reads the file's bytes.
 */

const P = 4096;
const A = 0x4000_0000;
/** A file page's first byte: page p holds p + 1 (never 0, so a zero-filled page is noticed). */
const byte = (p: number) => (p + 1) & 0xff;

type Design = {
  readonly name: string;
  readonly factory: FaultHandlerFactory;
  /**
   * Whether the setup thread's faults try the speculative path too (Lespinasse's series has no
   * single-thread shortcut; Dufour's v12 skips an mm with one user, and the second thread starts later).
   */
  readonly setupSpeculates: boolean;
  /** Faults finished speculatively on a file VMA, and the file aborts by reason. */
  readonly fileStats: (sys: System) => { handled: number; attempts: number; aborts: Record<string, number> };
};

const dufourStats = (sys: System) => {
  const c = (sys.faultHandler as DufourSpfHandler).counters;
  return {
    attempts: c.spf_file_attempt,
    handled: c.spf_file_handled,
    aborts: {
      miss: c.spf_file_pagecache_miss,
      mkwrite: c.spf_file_mkwrite,
      anonVma: c.spf_file_anon_vma,
      release: c.spf_file_release,
      around: c.spf_file_fault_around,
    },
  };
};
const lespinasseStats = (sys: System) => {
  const c = (sys.faultHandler as LespinasseSpfHandler).counters;
  return {
    attempts: c.spf_file_attempt,
    handled: c.spf_file_attempt - c.spf_file_abort,
    aborts: {
      miss: c.SPF_ABORT_FILE_PAGECACHE_MISS,
      mkwrite: c.SPF_ABORT_FILE_MKWRITE,
      anonVma: c.SPF_ABORT_ANON_VMA,
      release: c.SPF_ABORT_FILE_RELEASE,
      around: c.SPF_ABORT_FILE_FAULT_AROUND,
    },
  };
};

const DESIGNS: readonly Design[] = [
  {
    name: 'dufour fileVmas',
    factory: dufourSpf({ fileVmas: true }),
    setupSpeculates: false,
    fileStats: dufourStats,
  },
  {
    name: 'lespinasse (fileVmas by default)',
    factory: lespinasseSpf(),
    setupSpeculates: true,
    fileStats: lespinasseStats,
  },
];

/** Creates file `f` of `pages` pages (page p's bytes = p + 1), cached and clean; returns its fd. */
function* makeFile(u: UserContext, pages: number): Kernel<number> {
  const fd = yield* u.open('f', O_RDWR | O_CREAT | O_TRUNC);
  if (!fd.ok) throw new Error(`open: ${errnoName(fd.errno)}`);
  for (let p = 0; p < pages; p++) yield* u.pwrite(fd.value, p * P, new Uint8Array(P).fill(byte(p)));
  yield* u.fsync(fd.value);
  return fd.value;
}

/**
 * Boots 2 CPUs; the main thread sets up (`prepare`), a second thread (so neither design's single-thread
 * shortcut applies) runs `body`. Returns the system after the run.
 */
function run(
  factory: FaultHandlerFactory,
  prepare: (u: UserContext) => Kernel<void>,
  body: (t: UserContext) => Kernel<void>,
  opts: { faultAroundBytes?: number; vmFileRelease?: VmFileRelease } = {},
): System {
  const sys = boot({
    cpus: 2,
    memory: 8 * 1024 * 1024,
    faultHandler: factory,
    files: { faultAroundBytes: opts.faultAroundBytes },
    vmFileRelease: opts.vmFileRelease,
  });
  sys.spawnProcess('main', function* (u) {
    yield* prepare(u);
    let done = false;
    yield* u.spawnThread(function* (t) {
      yield* body(t);
      done = true;
    }, 1);
    while (!done) yield* u.schedYield();
  });
  const r = sys.run();
  expect(r.failure?.message).toBeUndefined();
  for (const p of r.processes) expect(p.status, `${p.name} exit`).toEqual({ kind: 'exited', code: 0 });
  return sys;
}

describe.each(DESIGNS)('speculative file faults: $name', (d) => {
  it('read faults on cached pages finish speculatively (fault-around maps the neighbours) and read the file', () => {
    const sys = run(
      d.factory,
      function* (u) {
        const fd = yield* makeFile(u, 64);
        const m = yield* u.mmap(A, 64 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
        if (!m.ok) throw new Error(`mmap: ${errnoName(m.errno)}`);
        // First fault (from this thread): installs the page table under mmap_lock.
        yield* u.load8(A);
      },
      function* (t) {
        for (let p = 16; p < 64; p += 16) {
          const v = yield* t.load8(A + p * P);
          if (v !== byte(p)) throw new Error(`page ${p} read ${v}, the file holds ${byte(p)}`);
        }
        for (let p = 0; p < 64; p++) {
          const v = yield* t.load8(A + p * P + 5);
          if (v !== byte(p)) throw new Error(`page ${p} read ${v}, the file holds ${byte(p)}`);
        }
      },
    );
    const s = d.fileStats(sys);
    expect(s.handled).toBe(3); // pages 16, 32, 48: each maps its 16-page window
    // Lespinasse's also tried the setup thread's first fault, which found no page table (SPF_ABORT_PMD).
    expect(s.attempts).toBe(d.setupSpeculates ? 4 : 3);
    expect(sys.faultHandler.speculativeStats?.().handled).toBeGreaterThanOrEqual(3);
  });

  it('a page-cache miss falls back (no I/O speculatively) and the classic path reads the page: a major fault', () => {
    const sys = run(
      d.factory,
      function* (u) {
        const fd = yield* makeFile(u, 4);
        const m = yield* u.mmap(A, 4 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
        if (!m.ok) throw new Error(`mmap: ${errnoName(m.errno)}`);
        yield* u.load8(A + 3 * P);
        yield* u.munmap(A, 4 * P);
        const again = yield* u.mmap(A, 4 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
        if (!again.ok) throw new Error('mmap');
        yield* u.posixFadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        yield* u.load8(A + 3 * P); // page table back, page 3 cached again (readahead reads all 4)
        yield* u.posixFadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      },
      function* (t) {
        const v = yield* t.load8(A);
        if (v !== byte(0)) throw new Error(`read ${v}`);
      },
      { faultAroundBytes: 4096 },
    );
    const s = d.fileStats(sys);
    expect(s.aborts.miss).toBe(1);
    expect(s.handled).toBe(0);
  });

  it('shared writes never call ->page_mkwrite speculatively; private writes need an anon_vma first', () => {
    const sys = run(
      d.factory,
      function* (u) {
        const fd = yield* makeFile(u, 2);
        const m = yield* u.mmap(A, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (!m.ok) throw new Error('mmap');
        const m2 = yield* u.mmap(A + 4 * P, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
        if (!m2.ok) throw new Error('mmap');
        yield* u.load8(A); // page table
      },
      function* (t) {
        yield* t.store8(A + P, 0x55); // shared write: falls back (page_mkwrite)
        yield* t.store8(A + 4 * P, 0x66); // private write, no anon_vma yet: falls back (anon_vma prepared there)
        yield* t.store8(A + 5 * P, 0x67); // private write with an anon_vma: COW speculatively
        const a = yield* t.load8(A + P);
        const b = yield* t.load8(A + 4 * P);
        const c = yield* t.load8(A + 5 * P);
        const f = yield* t.load8(A + 5 * P + 1);
        if (a !== 0x55 || b !== 0x66 || c !== 0x67 || f !== byte(1))
          throw new Error(`read ${a} ${b} ${c} ${f}`);
      },
      { faultAroundBytes: 4096 },
    );
    const s = d.fileStats(sys);
    expect(s.aborts.mkwrite).toBe(1);
    expect(s.aborts.anonVma).toBe(1);
    expect(s.handled).toBeGreaterThanOrEqual(1);
  });

  it('with vm_file released at remove_vma() (Linux), file VMAs are not speculated', () => {
    const sys = run(
      d.factory,
      function* (u) {
        const fd = yield* makeFile(u, 2);
        const m = yield* u.mmap(A, 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
        if (!m.ok) throw new Error('mmap');
        yield* u.load8(A);
      },
      function* (t) {
        yield* t.load8(A + P);
      },
      { faultAroundBytes: 4096, vmFileRelease: 'removeVma' },
    );
    const s = d.fileStats(sys);
    expect(s.aborts.release).toBe(d.setupSpeculates ? 2 : 1);
    expect(s.handled).toBe(0);
  });
});
