import { describe, expect, it } from 'vitest';
import { splitObservations } from './diff.js';
import { fileByte } from './format.js';
import { generateScript } from './generate.js';
import { probeHost, runOnHost } from './host.js';
import { parseScript } from './parse.js';
import { parseObservations } from './parse-output.js';

/**
 * The harness's file ops on the host kernel: real files in a fresh directory on a disk-backed filesystem.
 * These pin what the conformance fixtures rely on; the exact readahead figures live in the fixtures.
 */
const host = probeHost();
const usable = host.linux && host.cc && host.files !== undefined;
if (!usable) {
  console.warn(
    `\n!!! SKIPPING the harness's file-op tests: ${host.reason ?? host.filesReason ?? 'host unusable'}.\n`,
  );
}
const hostIt = usable ? it : it.skip;

function run(lines: readonly string[]): string[] {
  return runOnHost(lines.join('\n')).trimEnd().split('\n');
}

describe('runOnHost with files', () => {
  hostIt('probes what file outputs depend on: read_ahead_kb and fault-around', () => {
    expect(host.files?.dir).not.toBe('');
    expect(host.files?.faultAroundPages).toBeGreaterThanOrEqual(1);
    console.info(
      `host files: dir ${host.files?.dir}, read_ahead_kb ${host.files?.readAheadKb}, ` +
        `fault-around ${host.files?.faultAroundPages} pages`,
    );
  });

  hostIt('creates a file with the documented contents, reads it with pread and through a mapping', () => {
    expect(
      run([
        'file 5 4',
        'read 5 0',
        'read 5 3',
        'read 5 4',
        'mmap 0 4 r private 5:1',
        'touch 0 r',
        'touch 2 r',
        'maps',
      ]),
    ).toEqual([
      'file 5 ok',
      `read 5 0 val=${fileByte(5, 0, 0)}`,
      `read 5 3 val=${fileByte(5, 3, 0)}`,
      'read 5 4 eof',
      'mmap ok',
      // A cached file: the first read fault maps its neighbours too (fault-around), the second is free.
      `touch ok min=1 maj=0 val=${fileByte(5, 1, 0)}`,
      `touch ok min=0 maj=0 val=${fileByte(5, 3, 0)}`,
      'maps',
      '0-4 r--p 1 f5',
      'end',
    ]);
  });

  hostIt('evict drops the page cache: the next read fault is major', () => {
    const out = run(['file 1 8', 'evict 1', 'mmap 0 8 r shared 1:0', 'touch 3 r', 'pagemap 0 8']);
    expect(out.slice(0, 4)).toEqual([
      'file 1 ok',
      'evict 1 ok',
      'mmap ok',
      `touch ok min=0 maj=1 val=${fileByte(1, 3, 0)}`,
    ]);
  });

  hostIt('SIGBUS past the end of the file; truncation unmaps the cut part', () => {
    expect(
      run([
        'file 2 4',
        'mmap 0 6 rw shared 2:0',
        'touch 5 r',
        'touch 3 w',
        'truncate 2 2',
        'pagemap 0 6',
        'touch 3 r',
        'read 2 3',
        'touch 1 r',
      ]),
    ).toEqual([
      'file 2 ok',
      'mmap ok',
      'touch SIGBUS',
      'touch ok min=1 maj=0',
      'truncate 2 ok',
      expect.stringMatching(/^pagemap [.F]{2}\.{4}$/),
      'touch SIGBUS',
      'read 2 3 eof',
      expect.stringMatching(/^touch ok min=[01] maj=0 val=\d+$/),
    ]);
  });

  hostIt('a private write copies the page; a shared write reaches the file', () => {
    expect(
      run([
        'file 0 2',
        'mmap 0 2 rw private 0:0',
        'mmap 4 2 rw shared 0:0',
        'touch 0 w',
        'read 0 0',
        'touch 5 w',
        'read 0 1',
        'write 0 0',
        'touch 4 r',
        'touch 0 r',
        'pagemap 0 6',
      ]),
    ).toEqual([
      'file 0 ok',
      'mmap ok',
      'mmap ok',
      'touch ok min=1 maj=0',
      `read 0 0 val=${fileByte(0, 0, 0)}`,
      'touch ok min=1 maj=0',
      'read 0 1 val=90',
      'write 0 0 ok',
      expect.stringMatching(/^touch ok min=[01] maj=0 val=119$/),
      'touch ok min=0 maj=0 val=90',
      // Write faults map only the faulting page (no fault-around); the private page is anonymous now.
      'pagemap A...FF',
    ]);
  });

  hostIt('unknown ids are EBADF, an existing id is EEXIST, writes past the end extend the file', () => {
    expect(
      run([
        'read 9 0',
        'write 9 0',
        'evict 9',
        'truncate 9 1',
        'mmap 0 1 r private 9:0',
        'file 3 1',
        'file 3 1',
        'write 3 4',
        'read 3 2',
        'read 3 4',
        'read 3 5',
      ]),
    ).toEqual([
      'read 9 0 EBADF',
      'write 9 0 EBADF',
      'evict 9 EBADF',
      'truncate 9 EBADF',
      'mmap EBADF',
      'file 3 ok',
      'file 3 EEXIST',
      'write 3 4 ok',
      'read 3 2 val=0',
      'read 3 4 val=119',
      'read 3 5 eof',
    ]);
  });

  hostIt('runs generated scripts that mix files and anonymous memory, one observation per op', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const script = generateScript(seed, { files: 3, window: 32, ops: 60 });
      const ops = parseScript(script);
      const out = runOnHost(script);
      expect(splitObservations(out), `seed ${seed}`).toHaveLength(ops.length);
      expect(
        parseObservations(out).map((o) => o.op),
        `seed ${seed}`,
      ).toEqual(ops.map((o) => o.kind));
    }
  });
});
