// Host memory per frame: 1 million frames allocated and never written, then the same frames each written
// once with non-zero data. Run: npx tsx bench/memory.ts
//
// Never-written frames are measured as V8 heap + external memory. Written frames are measured as growth of
// the resident set (RSS), because 1M x 4 KiB is 4 GiB and V8's external-memory counter wraps at 2^32.
import v8 from 'node:v8';
import vm from 'node:vm';
import { PhysicalMemory } from '../src/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

type Usage = { js: number; rss: number; heap: number };
function usage(): Usage {
  gc();
  gc();
  const m = process.memoryUsage();
  return { js: m.heapUsed + m.external, rss: m.rss, heap: m.heapUsed };
}

const N = 1 << 20;
const base = usage();
const mem = new PhysicalMemory({ size: (N + 1024) * 4096 });
const frames = new Float64Array(N); // the benchmark's own list, 8 bytes per frame, subtracted below
for (let i = 0; i < N; i++) frames[i] = mem.allocFrames(0);
const afterAlloc = usage();
const perNever = (afterAlloc.js - base.js - 8 * N) / N;
console.log(
  `1M frames allocated, never written: ${perNever.toFixed(1)} host bytes per frame (heap + external)`,
);
for (let i = 0; i < N; i++) mem.write8(frames[i] * 4096 + 123, 0x5a);
const afterWrite = usage();
const perWritten = (afterWrite.rss - afterAlloc.rss) / N + perNever;
console.log(
  `1M frames written once (non-zero):  ${perWritten.toFixed(1)} host bytes per frame (RSS growth + the above)`,
);
