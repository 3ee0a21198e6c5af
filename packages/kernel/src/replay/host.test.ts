import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { splitObservations } from './diff.js';
import { ReplayParseError } from './errors.js';
import { generateScript } from './generate.js';
import { compileHarness, probeHost, runOnHost } from './host.js';
import { parseScript } from './parse.js';
import { parseObservations } from './parse-output.js';

const host = probeHost();
const usable = host.linux && host.cc;
if (!usable) {
  console.warn(
    `\n!!! SKIPPING the real-kernel harness tests: ${host.reason ?? 'host unusable'}. ` +
      'They need Linux and a C compiler (cc).\n',
  );
}
const hostIt = usable ? it : it.skip;

/** Runs a script on the host and returns its output lines. */
function run(lines: readonly string[]): string[] {
  return runOnHost(lines.join('\n')).trimEnd().split('\n');
}

describe('runOnHost (the C harness on the real kernel)', () => {
  hostIt('probes the host', () => {
    expect(host).toMatchObject({ linux: true, cc: true });
    console.info(
      `host probe: zero page ${host.zeroPage ? 'present' : 'absent'}, PFNs visible: ${host.pfnVisible}`,
    );
  });

  hostIt('splits one VMA into three with an mprotect in the middle, and merges them back', () => {
    expect(run(['mmap 0 4 rw private anon', 'mprotect 1 2 r', 'maps', 'mprotect 1 2 rw', 'maps'])).toEqual([
      'mmap ok',
      'mprotect ok',
      'maps',
      '0-1 rw-p 0 -',
      '1-3 r--p 0 -',
      '3-4 rw-p 0 -',
      'end',
      'mprotect ok',
      'maps',
      '0-4 rw-p 0 -',
      'end',
    ]);
  });

  hostIt('merges adjacent private mappings but not shared ones, whose pgoff shows through a split', () => {
    expect(
      run([
        'mmap 0 2 rw private anon',
        'mmap 2 2 rw private anon',
        'mmap 8 2 rw shared anon',
        'mmap 10 3 rw shared anon',
        'mprotect 11 1 r',
        'maps',
      ]),
    ).toEqual([
      'mmap ok',
      'mmap ok',
      'mmap ok',
      'mmap ok',
      'mprotect ok',
      'maps',
      '0-4 rw-p 0 -',
      '8-10 rw-s 0 -',
      '10-11 rw-s 0 -',
      '11-12 r--s 1 -',
      '12-13 rw-s 2 -',
      'end',
    ]);
  });

  hostIt('raises SIGSEGV MAPERR for an unmapped page and ACCERR for a forbidden access', () => {
    expect(
      run([
        'touch 5 r',
        'mmap 0 1 r private anon',
        'mmap 1 1 - private anon',
        'touch 0 w',
        'touch 1 r',
        'touch 0 r',
        'munmap 0 1',
        'touch 0 r',
      ]),
    ).toEqual([
      'touch SIGSEGV MAPERR',
      'mmap ok',
      'mmap ok',
      'touch SIGSEGV ACCERR',
      'touch SIGSEGV ACCERR',
      'touch ok min=1 maj=0 val=0',
      'munmap ok',
      'touch SIGSEGV MAPERR',
    ]);
  });

  hostIt('counts one minor fault for the first touch of a page and none for the second', () => {
    expect(
      run(['mmap 0 2 rw private anon', 'touch 0 w', 'touch 0 w', 'touch 0 r', 'touch 1 r', 'touch 1 r']),
    ).toEqual([
      'mmap ok',
      'touch ok min=1 maj=0',
      'touch ok min=0 maj=0',
      'touch ok min=0 maj=0 val=90',
      'touch ok min=1 maj=0 val=0',
      'touch ok min=0 maj=0 val=0',
    ]);
  });

  hostIt('write after read: a COW fault off the zero page if there is one, no fault otherwise', () => {
    const out = run(['mmap 0 1 rw private anon', 'touch 0 r', 'pagemap 0 1', 'touch 0 w', 'pagemap 0 1']);
    expect(out).toEqual([
      'mmap ok',
      'touch ok min=1 maj=0 val=0',
      host.zeroPage ? 'pagemap Z' : 'pagemap A',
      host.zeroPage ? 'touch ok min=1 maj=0' : 'touch ok min=0 maj=0',
      'pagemap A',
    ]);
  });

  hostIt('mmap over an existing mapping is EEXIST without fixed and replaces it with fixed', () => {
    expect(
      run([
        'mmap 0 4 rw private anon',
        'touch 1 w',
        'mmap 1 1 r private anon',
        'touch 1 r',
        'mmap 1 1 r private anon fixed',
        'touch 1 r',
        'maps',
      ]),
    ).toEqual([
      'mmap ok',
      'touch ok min=1 maj=0',
      'mmap EEXIST',
      'touch ok min=0 maj=0 val=90',
      'mmap ok',
      'touch ok min=1 maj=0 val=0',
      'maps',
      '0-1 rw-p 0 -',
      '1-2 r--p 0 -',
      '2-4 rw-p 0 -',
      'end',
    ]);
  });

  hostIt('reports errnos for bad arguments and changes nothing', () => {
    expect(
      run([
        'mmap 0 0 rw private anon',
        'munmap 0 0',
        'mprotect 0 0 r',
        'mprotect 10 2 r',
        'munmap 10 2',
        'maps',
      ]),
    ).toEqual(['mmap EINVAL', 'munmap EINVAL', 'mprotect ok', 'mprotect ENOMEM', 'munmap ok', 'maps', 'end']);
  });

  hostIt('mprotect across a hole fails with ENOMEM after changing the part before the hole', () => {
    // A Linux detail a simulator must copy: do_mprotect_pkey() applies the change VMA by VMA and only
    // notices the hole when it reaches it.
    expect(run(['mmap 0 2 rw private anon', 'mmap 3 2 rw private anon', 'mprotect 0 5 r', 'maps'])).toEqual([
      'mmap ok',
      'mmap ok',
      'mprotect ENOMEM',
      'maps',
      '0-2 r--p 0 -',
      '3-5 rw-p 0 -',
      'end',
    ]);
  });

  hostIt('shows present pages in pagemap: private anonymous A, shared F, untouched .', () => {
    expect(
      run(['mmap 0 4 rw private anon', 'mmap 4 2 rw shared anon', 'touch 1 w', 'touch 4 r', 'pagemap 0 6']),
    ).toEqual(['mmap ok', 'mmap ok', 'touch ok min=1 maj=0', 'touch ok min=1 maj=0 val=0', 'pagemap .A..F.']);
  });

  hostIt('munmap in the middle leaves two VMAs and the unmapped page faults', () => {
    expect(run(['mmap 0 3 r private anon', 'munmap 1 1', 'maps', 'touch 1 r', 'touch 2 r'])).toEqual([
      'mmap ok',
      'munmap ok',
      'maps',
      '0-1 r--p 0 -',
      '2-3 r--p 0 -',
      'end',
      'touch SIGSEGV MAPERR',
      'touch ok min=1 maj=0 val=0',
    ]);
  });

  (usable && process.arch === 'x64' ? it : it.skip)(
    'on x86 a load from a write-only or exec-only mapping succeeds (the PTE cannot forbid reads)',
    () => {
      expect(run(['mmap 0 1 w private anon', 'mmap 1 1 x private anon', 'touch 0 r', 'touch 1 r'])).toEqual([
        'mmap ok',
        'mmap ok',
        'touch ok min=1 maj=0 val=0',
        'touch ok min=1 maj=0 val=0',
      ]);
    },
  );

  hostIt('validates the script before running anything', () => {
    expect(() => runOnHost('mmap 0 1 rw private anon\ntouch 0 q\n')).toThrow(ReplayParseError);
  });

  hostIt('the harness itself rejects a malformed line with its line number', () => {
    const r = spawnSync(compileHarness(), [], { input: '# x\nmmap 0 1 rw private\n', encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /line 2: mmap expects <off> <npages> <prot> <share> anon\|<id>:<pgoff> \[fixed\]/,
    );
  });

  hostIt('accepts every generated script, printing one well-formed observation per op, reproducibly', () => {
    const shapes: Record<string, RegExp> = {
      mmap: /^mmap (ok|E[A-Z0-9]+)$/,
      munmap: /^munmap (ok|E[A-Z0-9]+)$/,
      mprotect: /^mprotect (ok|E[A-Z0-9]+)$/,
      touch: /^touch (ok min=\d+ maj=\d+( val=\d+)?|SIGSEGV (MAPERR|ACCERR)|SIGBUS)$/,
      maps: /^maps\n(\d+-\d+ [r-][w-][x-][ps] \d+ -\n)*end$/,
      pagemap: /^pagemap [.ZAF]+$/,
    };
    for (let seed = 1; seed <= 25; seed++) {
      const script = generateScript(seed);
      const ops = parseScript(script);
      const out = runOnHost(script);
      const chunks = splitObservations(out);
      expect(chunks, `seed ${seed}`).toHaveLength(ops.length);
      expect(
        parseObservations(out).map((o) => o.op),
        `seed ${seed}`,
      ).toEqual(ops.map((o) => o.kind));
      ops.forEach((op, i) => {
        expect(chunks[i], `seed ${seed}, line ${op.line}`).toMatch(shapes[op.kind]);
      });
      if (seed <= 3) expect(runOnHost(script), `seed ${seed} twice`).toBe(out);
    }
  });
});
