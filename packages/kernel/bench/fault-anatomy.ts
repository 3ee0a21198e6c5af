/**
 * What one simulated anonymous write fault costs the host, and the least it could cost in this design.
 *
 * The fault path is generator code: every kernel function that performs a machine effect is a `function*`
 * composed with `yield*`, and every effect travels from the innermost generator out to the machine and back
 * through each delegating frame. This script counts, for the same workload as `bench/faults.ts` (one
 * simulated CPU, timed policy, one store per fresh page of a private anonymous mapping):
 *
 * - machine effects per fault;
 * - generator objects created per fault (kernel functions entered);
 * - generator resumptions per fault (each `next()`, including those `yield*` makes on the inner frames),
 *   and from those the mean delegation depth an effect passes through;
 *
 * then times a synthetic workload of exactly that shape with no simulation in it (empty generators), which is
 * the host cost of the generator plumbing alone: a floor no optimisation of the simulated kernel's logic can
 * go below while it keeps one generator per kernel function and one effect per modelled memory access.
 *
 * Run: npx tsx bench/fault-anatomy.ts [pages]   (from packages/kernel; `pnpm bench:anatomy`)
 */

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Counter = { on: boolean; resumes: number; created: number };

// Counting generator resumptions needs a hook on %GeneratorPrototype%.next, and patching that prototype
// turns off V8's fast paths for generators in the whole process (the real fault path runs about 1.5x
// slower afterwards). So the counts come from a child process (SPF_ANATOMY_COUNT=1) and the timings from
// this one, which never patches anything. The hook must be installed before the simulator's modules
// load, hence the dynamic imports below.
const counting = process.env.SPF_ANATOMY_COUNT === '1';
const counter: Counter = { on: false, resumes: 0, created: 0 };
if (counting) {
  const generatorPrototype = Object.getPrototypeOf(function* () {}.prototype) as {
    next: (this: Generator, v?: unknown) => IteratorResult<unknown>;
  };
  const originalNext = generatorPrototype.next;
  const seen = new WeakSet<object>();
  generatorPrototype.next = function (this: Generator, v?: unknown) {
    if (counter.on) {
      counter.resumes++;
      if (!seen.has(this)) {
        seen.add(this);
        counter.created++;
      }
    }
    return originalNext.call(this, v);
  };
}

const { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } = await import('@spf/vma');
const { boot } = await import('../src/index.js');

type Shape = { faults: number; effects: number; created: number; resumes: number; loopMs: number };

/** Faults `pages` fresh pages in; counts (when `count`) or times the faulting loop. */
function faultLoop(pages: number, count: boolean): Shape {
  const system = boot({ cpus: 1, memory: (pages + 8192) * 4096, checkInvariants: false });
  let faults = 0;
  let effects0 = 0;
  let loopMs = 0;
  const machine = system.machine;
  system.spawnProcess('anatomy', function* (u) {
    const r = yield* u.mmap(0, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) throw new Error(`mmap failed: ${r.errno}`);
    const f0 = u.rusage().minflt;
    effects0 = machine.effectCount;
    counter.on = count;
    const t0 = performance.now();
    for (let p = 0; p < pages; p++) yield* u.store8(r.value + p * 4096, 0);
    loopMs = performance.now() - t0;
    counter.on = false;
    faults = u.rusage().minflt - f0;
    effects0 = machine.effectCount - effects0;
  });
  const res = system.run();
  if (!res.ok) throw new Error(`run failed: ${res.failure?.message}`);
  return { faults, effects: effects0, created: counter.created, resumes: counter.resumes, loopMs };
}

const E = { kind: 0 };

/** `depth` nested generators delegating with `yield*`; the innermost yields `effects` times. */
function* nested(depth: number, effects: number): Generator<unknown, number, unknown> {
  if (depth > 1) return yield* nested(depth - 1, effects);
  let s = 0;
  for (let i = 0; i < effects; i++) s += (yield E) as number;
  return s;
}

/** A generator that yields once: one kernel function entered and left. */
function* leaf(): Generator<unknown, number, unknown> {
  return (yield E) as number;
}

/** Enters `calls` one-effect generators from one frame. */
function* caller(calls: number): Generator<unknown, number, unknown> {
  let s = 0;
  for (let i = 0; i < calls; i++) s += yield* leaf();
  return s;
}

/** Host ns per run of `make()`'s generator driven to completion by a minimal machine loop. */
function nsPer(make: () => Generator<unknown, number, unknown>, runs: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const g = make();
      for (let r = g.next(); !r.done; r = g.next(1));
    }
    best = Math.min(best, ((performance.now() - t0) * 1e6) / runs);
  }
  return best;
}

const pages = Number(process.argv[2] ?? 20_000);
if (counting) {
  const shape = faultLoop(pages, true);
  process.stdout.write(JSON.stringify(shape));
  process.exit(0);
}
const shape = JSON.parse(
  execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), String(pages)], {
    env: { ...process.env, SPF_ANATOMY_COUNT: '1' },
    encoding: 'utf8',
  }),
) as Shape;
faultLoop(2000, false); // warm-up
const timed = faultLoop(pages, false);
const perFault = (x: number) => x / shape.faults;
const effects = perFault(shape.effects);
const created = perFault(shape.created);
const resumes = perFault(shape.resumes);
// Each effect resumes every frame between the machine and the code that yielded it; calls add the
// resumption that starts each new frame and the one that finishes it.
const depth = Math.max(1, Math.round((resumes - created) / effects));

const runs = 20_000;
const effectsAtDepth = nsPer(() => nested(depth, Math.round(effects)), runs);
const effectsFlat = nsPer(() => nested(1, Math.round(effects)), runs);
const callCost =
  nsPer(() => caller(Math.round(created)), runs) - nsPer(() => nested(1, Math.round(created)), runs);
const floorNs = effectsAtDepth + Math.max(0, callCost);
const measuredNs = (timed.loopMs * 1e6) / timed.faults;

const f = (x: number, d = 1) => x.toFixed(d);
const rate = (ns: number) => Math.round(1e9 / ns).toLocaleString('en-US');
console.log(`anonymous 4 KiB write faults, 1 simulated CPU, timed policy, ${shape.faults} faults`);
console.log(`  machine effects per fault          ${f(effects)}`);
console.log(`  generator frames created per fault ${f(created)}`);
console.log(
  `  generator resumptions per fault    ${f(resumes)}   (mean delegation depth per effect ≈ ${depth})`,
);
console.log('generator plumbing alone, the same shape with empty generators (best of 5):');
console.log(
  `  ${Math.round(effects)} effects at depth ${depth}: ${f(effectsAtDepth, 0)} ns   (at depth 1: ${f(effectsFlat, 0)} ns)`,
);
console.log(`  ${Math.round(created)} frames entered and left: ${f(callCost, 0)} ns`);
console.log(`  floor: ${f(floorNs, 0)} ns per fault = at most ${rate(floorNs)} faults/s`);
console.log(`measured, the real fault path: ${f(measuredNs, 0)} ns per fault = ${rate(measuredNs)} faults/s`);
