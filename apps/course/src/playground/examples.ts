import { DEFAULT_SETTINGS, type PlaygroundSettings } from './settings.js';

/** A program to start from, with the settings it is meant to run under. */
export type PlaygroundExample = {
  readonly id: string;
  readonly title: string;
  readonly settings: PlaygroundSettings;
};

const FORK = `// The fork example of @spf/kernel's README, with snapshots.
spawn('demo', function* (u) {
  const r = yield* u.mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (!r.ok) return;
  yield* u.store8(r.value, 42); // #PF -> do_anonymous_page -> retry the store
  show(u, 'parent after its first store');
  const pid = yield* u.fork(function* (child) {
    show(child, 'child before its store (the page is shared, read-only)');
    yield* child.store8(r.value, 7); // copy-on-write
    show(child, 'child after its store (its own copy)');
  }, 1);
  if (!pid.ok) return; // ENOMEM: no memory for the child's page tables
  yield* u.wait(pid.value);
  print('parent reads', yield* u.load8(r.value), 'rusage', u.rusage()); // 42 { minflt: 1, majflt: 0 }
  show(u, 'parent after wait');
  yield* u.load8(r.value + 8192); // no VMA: SIGSEGV kills the process
});
`;

const COW = `// Copy-on-write, step by step: which store copies and which reuses the page.
spawn('parent', function* (u) {
  const n = 4;
  const r = yield* u.mmap(0, n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  if (!r.ok) return;
  for (let i = 0; i < n; i++) yield* u.store8(r.value + i * PAGE, 0x10 + i);
  print('parent filled', n, 'pages:', u.rusage());
  const pid = yield* u.fork(function* (c) {
    const before = c.rusage().minflt;
    for (let i = 0; i < n; i++) yield* c.load8(r.value + i * PAGE);
    print('child read every page with', c.rusage().minflt - before, 'faults (pages shared)');
    yield* c.store8(r.value, 0xcc); // do_wp_page: the page has two users, copy it
    print('child wrote page 0:', c.rusage().minflt - before, 'fault (a copy)');
    show(c, 'child after its copy');
  }, 1);
  if (!pid.ok) return;
  yield* u.wait(pid.value);
  const before = u.rusage().minflt;
  yield* u.store8(r.value, 0xaa); // the child is gone: the page is exclusive again, reused in place
  print('parent wrote page 0:', u.rusage().minflt - before, 'fault (reused, not copied)');
  print(system.vmstat.toString().split('\\n').filter((l) => /cow/.test(l)).join(', '));
  show(u, 'parent at the end');
});
`;

const SCALING = `// The scaling experiment at a small size: T threads each write once to every page of their own region.
// Compare handlers and CPU counts: faults per simulated second is printed at the end.
const T = 4; // threads (one per CPU: keep CPUs >= T)
const PAGES = 16; // pages per thread
spawn('scaling', function* (u) {
  const base = 0x4000_0000;
  const joins = [];
  for (let t = 0; t < T; t++) {
    // 2 MiB apart: each region has a page table of its own, so no PTE lock is shared
    const r = yield* u.mmap(base + t * 0x20_0000, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    check(r.ok, 'mmap failed');
  }
  for (let t = 0; t < T; t++) {
    joins.push(yield* thread(u, t, function* (th) {
      for (let p = 0; p < PAGES; p++) yield* th.store8(base + t * 0x20_0000 + p * PAGE, 1);
    }));
  }
  for (const join of joins) yield* join();
  show(u, 'after every thread finished');
  print('faults:', system.vmstat.pgfault);
});
`;

const SPF_RACE = `// A per-VMA-lock race with one of Linux 6.4's vma_start_write() calls switched off (the spec option
// checks.vmaStartWrite.mprotect=false): mprotect(PROT_READ) no longer waits for faults that hold the VMA
// lock, so a write fault can install a writable PTE in a VMA that is already read-only. The invariant check
// at the end catches it, and the timeline shows the interleaving. Delete the line in "Design options" and
// the same exploration finds nothing.
const A = 0x5000_0000;
spawn('mprotect', function* (u) {
  yield* u.mmap(A, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
  yield* u.store8(A, 1); // the VMA gets its anon_vma (6.4 locks only such VMAs)
  const join = yield* thread(u, 1, function* (t) {
    t.catchSignal('SIGSEGV');
    for (let p = 1; p < 4; p++) {
      try {
        yield* t.store8(A + p * PAGE, 2);
      } catch (e) {
        if (!(e instanceof UserSignal)) throw e; // SIGSEGV after the mprotect: expected
      }
    }
  });
  const r = yield* u.mprotect(A, 4 * PAGE, PROT_READ);
  check(r.ok, 'mprotect failed');
  yield* join();
  show(u, 'after the race');
  system.assertInvariants(); // no writable PTE may remain in the read-only VMA
});
`;

const FILE = `// A file on the simulated disk mounted at /mnt. After POSIX_FADV_DONTNEED evicts it, the first read through
// the mapping is a major fault: filemap_fault() drops mmap_lock, waits for the disk (simulated time passes)
// and retries. Readahead brought the neighbours into the page cache and fault-around mapped them, so the
// next reads take no fault at all.
spawn('file', function* (u) {
  const fd = yield* u.open('data', O_CREAT | O_RDWR);
  check(fd.ok, 'open failed');
  yield* u.pwrite(fd.value, 0, new Uint8Array(16 * PAGE).fill(7));
  yield* u.fsync(fd.value);
  yield* u.posixFadvise(fd.value, 0, 0, POSIX_FADV_DONTNEED); // evict: the next read goes to the disk
  const r = yield* u.mmap(0, 16 * PAGE, PROT_READ, MAP_SHARED, fd.value, 0);
  check(r.ok, 'mmap failed');
  print('page 0 reads', yield* u.load8(r.value), u.rusage()); // one major fault
  for (let p = 1; p < 16; p++) yield* u.load8(r.value + p * PAGE);
  print('pages 1-15 read', u.rusage()); // still one: fault-around mapped them with page 0
  show(u, 'after the reads'); // /proc/self/maps names /mnt/data; all 16 PTEs are present
  yield* u.munmap(r.value, 16 * PAGE);
  yield* u.close(fd.value);
});
`;

export const PLAYGROUND_EXAMPLES: readonly PlaygroundExample[] = [
  { id: 'fork', title: "The README's fork example", settings: { ...DEFAULT_SETTINGS, source: FORK } },
  { id: 'cow', title: 'Copy-on-write after fork', settings: { ...DEFAULT_SETTINGS, source: COW } },
  {
    id: 'scaling',
    title: 'The scaling experiment, small',
    settings: { ...DEFAULT_SETTINGS, cpus: 4, source: SCALING },
  },
  {
    id: 'spf-race',
    title: 'A per-VMA-lock race with a check switched off',
    settings: {
      ...DEFAULT_SETTINGS,
      handler: 'pervma',
      specOptions: ['checks.vmaStartWrite.mprotect=false'],
      policy: 'pct:1:3',
      explore: 150,
      source: SPF_RACE,
    },
  },
  {
    id: 'file',
    title: 'A file mapping: a major fault, then readahead',
    settings: { ...DEFAULT_SETTINGS, source: FILE },
  },
  {
    id: 'replay',
    title: 'A replay script (spf replay)',
    settings: {
      ...DEFAULT_SETTINGS,
      mode: 'replay',
      cpus: 1,
      source: `# The format of spf replay (packages/kernel README, "Replay format"): offsets in pages from the arena.
mmap 0 4 rw private anon
touch 0 r
touch 0 w
touch 1 w
mprotect 1 1 r
maps
touch 1 w
pagemap 0 4
`,
    },
  },
];
