import { describe, expect, it } from 'vitest';
import { read, rmw, write } from './effects.js';
import { Machine } from './machine.js';
import { MemoryLine } from './memory-line.js';

describe('a memory line counts what was done to it', () => {
  it('counts locked RMWs in `rmws` and stores plus RMWs in `version`, over every machine that uses it', () => {
    const line = new MemoryLine('counted');
    for (let run = 0; run < 2; run++) {
      const m = new Machine({ cpus: 2 });
      m.spawn(0, 'a', function* () {
        yield* read(line);
        yield* rmw(line);
        yield* write(line);
      });
      m.spawn(1, 'b', function* () {
        yield* rmw(line);
        yield* rmw(line);
        yield* read(line);
      });
      expect(m.run().ok).toBe(true);
    }
    expect(line.rmws).toBe(6);
    expect(line.version).toBe(8);
  });
});
