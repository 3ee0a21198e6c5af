import {
  errnoName,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  mmapSync,
  mprotectSync,
  munmapSync,
  PROT_READ,
  PROT_WRITE,
} from '@spf/vma';
import type { File } from '../file.js';
import { fileRead, fileTruncate, fileWrite } from '../file-ops.js';
import { filemapVmOps } from '../filemap.js';
import { makeFileFixture } from './fixture.js';

/**
 * A small interpreter for the file ops of the replay format (the subset the host-derived tests use), run
 * on {@link makeFileFixture}: pages are numbered from a 2 MiB-aligned base, as the harness's arena is
 * (page 512 starts a new PTE table). `mmap ... private anon` maps anonymous memory (shared anonymous is
 * not supported here).
 * Output lines are the harness's. Touch writes store 0x5a, as the harness does.
 */
export function miniReplay(
  script: string,
  readAheadKb = 8192,
  handler?: NonNullable<Parameters<typeof makeFileFixture>[0]>['handler'],
): string[] {
  const fx = makeFileFixture({ device: { readAheadKb }, handler });
  const BASE = 0x4000_0000;
  const P = 4096;
  const files = new Map<number, File>();
  const out: string[] = [];
  const prot = (s: string) => (s.includes('w') ? PROT_READ | PROT_WRITE : PROT_READ);
  for (const raw of script.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [op, ...a] = line.split(/\s+/);
    const n = a.map(Number);
    switch (op) {
      case 'file':
        files.set(n[0], fx.makeFile(n[0], n[1]));
        out.push(`file ${n[0]} ok`);
        break;
      case 'evict':
        fx.evict(files.get(n[0]) as File);
        out.push(`evict ${n[0]} ok`);
        break;
      case 'mmap': {
        const anon = a[4] === 'anon';
        const [id, pgoff] = anon ? [0, 0] : a[4].split(':').map(Number);
        const r = mmapSync(fx.mm, {
          addr: BASE + n[0] * P,
          len: n[1] * P,
          prot: prot(a[2]),
          flags: (a[3] === 'shared' ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | (anon ? MAP_ANONYMOUS : 0),
          offset: pgoff * P,
          file: anon
            ? undefined
            : { file: files.get(id) as File, ops: filemapVmOps, readable: true, writable: true },
        });
        out.push(r.ok ? 'mmap ok' : `mmap ${errnoName(r.errno)}`);
        break;
      }
      case 'munmap':
        munmapSync(fx.mm, BASE + n[0] * P, n[1] * P);
        out.push('munmap ok');
        break;
      case 'mprotect':
        mprotectSync(fx.mm, BASE + n[0] * P, n[1] * P, prot(a[2]));
        out.push('mprotect ok');
        break;
      case 'touch': {
        const min0 = fx.task.minflt;
        const maj0 = fx.task.majflt;
        const r = fx.touch(BASE + n[0] * P, a[1] === 'w' ? 'w' : 'r', 0x5a);
        const counts = `min=${fx.task.minflt - min0} maj=${fx.task.majflt - maj0}`;
        if ('ok' in r) out.push(a[1] === 'w' ? `touch ok ${counts}` : `touch ok ${counts} val=${r.value}`);
        else out.push(r.kind === 'sigbus' ? 'touch SIGBUS' : `touch ${r.kind}`);
        break;
      }
      case 'read': {
        const r = fx.run(fileRead(files.get(n[0]) as File, n[1] * P, 1));
        if (!r.ok) out.push(`read ${n[0]} ${n[1]} ${errnoName(r.errno)}`);
        else
          out.push(
            r.value.length === 0 ? `read ${n[0]} ${n[1]} eof` : `read ${n[0]} ${n[1]} val=${r.value[0]}`,
          );
        break;
      }
      case 'write':
        fx.run(fileWrite(files.get(n[0]) as File, n[1] * P, new Uint8Array([0x77])));
        out.push(`write ${n[0]} ${n[1]} ok`);
        break;
      case 'truncate':
        fx.run(fileTruncate(files.get(n[0]) as File, n[1] * P));
        out.push(`truncate ${n[0]} ok`);
        break;
      case 'pagemap': {
        let s = '';
        for (let p = n[0]; p < n[0] + n[1]; p++) {
          const steps = fx.mm.pgd.lookup(BASE + p * P);
          const leaf = steps[steps.length - 1];
          if (leaf === undefined || leaf.level !== 1 || (leaf.entry & 1n) === 0n) s += '.';
          else s += fx.mem.page(Number((leaf.entry >> 12n) & 0xfffffffffn)).test('anon') ? 'A' : 'F';
        }
        out.push(`pagemap ${s}`);
        break;
      }
      default:
        throw new Error(`miniReplay: unsupported op '${op}' in line '${line}'`);
    }
  }
  return out;
}
