import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import type { MmapFile } from './mmap.js';
import { mapsEntries, procMaps, showMapVma, smaps, vmaName } from './proc-maps.js';
import { brkSync, mmapSync, mprotectSync } from './sync-api.js';
import { makeSystem, touch } from './test-support/system.js';
import type { VmArea, VmFile, VmOperations } from './vm-area.js';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from './vm-flags.js';

const P = 4096;
const A = 0x7f00_0000_0000;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
/** seq_setwidth(25 + 6 * sizeof(void *) - 1): the line is padded to 72 characters, then seq_pad() adds a space. */
const pad = (s: string) => s.padEnd(72, ' ');

function fileOf(
  path: string,
  devMajor: number,
  devMinor: number,
  ino: number,
  ops: VmOperations = {},
): MmapFile {
  const file: VmFile = { path, devMajor, devMinor, ino };
  return { file, ops };
}

function vmaAt(mm: MmStruct, addr: number): VmArea {
  const v = mm.findVma(addr);
  if (v === null) throw new Error(`no VMA at ${addr.toString(16)}`);
  return v;
}

function map(
  mm: MmStruct,
  addr: number,
  pages: number,
  prot: number,
  flags = ANON,
  file?: MmapFile,
  offset = 0,
) {
  const r = mmapSync(mm, { addr, len: pages * P, prot, flags, file, offset });
  if (!r.ok) throw new Error(`mmap failed: errno ${r.errno}`);
}

describe('show_map_vma(): one /proc/PID/maps line', () => {
  it('prints the permissions, one letter per flag, s for a shared mapping and p for a private one', () => {
    const mm = new MmStruct();
    const cases: [number, number, string][] = [
      [PROT_NONE, ANON, '---p'],
      [PROT_READ, ANON, 'r--p'],
      [PROT_WRITE, ANON, '-w-p'],
      [PROT_EXEC, ANON, '--xp'],
      [PROT_READ | PROT_WRITE | PROT_EXEC, ANON, 'rwxp'],
      [PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, 'r--s'],
    ];
    cases.forEach(([prot, flags], i) => {
      map(mm, A + 2 * i * P, 1, prot, flags);
    });
    expect(cases.map((_, i) => showMapVma(vmaAt(mm, A + 2 * i * P)).split(' ')[1])).toEqual(
      cases.map(([, , perms]) => perms),
    );
  });

  it('a file mapping: its offset in bytes, the device as two hex digits each, the inode and the path', () => {
    const mm = new MmStruct();
    map(mm, A, 2, PROT_READ, MAP_PRIVATE | MAP_FIXED, fileOf('/usr/lib/libc.so.6', 259, 1, 1234567), 3 * P);
    map(mm, A + 4 * P, 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fileOf('/dev/shm/x', 0, 0x1a, 7));
    expect(showMapVma(vmaAt(mm, A))).toBe(
      `${pad('7f0000000000-7f0000002000 r--p 00003000 103:01 1234567 ')} /usr/lib/libc.so.6`,
    );
    expect(showMapVma(vmaAt(mm, A + 4 * P))).toBe(
      `${pad('7f0000004000-7f0000005000 rw-s 00000000 00:1a 7 ')} /dev/shm/x`,
    );
  });

  it('anonymous memory has offset 0, device 00:00, inode 0 and no name (no padding either)', () => {
    const mm = new MmStruct();
    map(mm, 0x10000, 1, PROT_READ);
    expect(showMapVma(vmaAt(mm, 0x10000))).toBe('00010000-00011000 r--p 00000000 00:00 0 ');
  });
});

describe('get_vma_name()', () => {
  it("vm_ops->name() wins over the file's path; a null name falls back to the path", () => {
    const mm = new MmStruct();
    const named: VmOperations = { name: () => '[vdso]' };
    const unnamed: VmOperations = { name: () => null };
    map(mm, A, 1, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fileOf('/vdso', 0, 0, 1, named));
    map(mm, A + 2 * P, 1, PROT_READ, MAP_PRIVATE | MAP_FIXED, fileOf('/data', 8, 1, 2, unnamed));
    expect(vmaName(vmaAt(mm, A))).toBe('[vdso]');
    expect(vmaName(vmaAt(mm, A + 2 * P))).toBe('/data');
    expect(showMapVma(vmaAt(mm, A))).toMatch(/ \[vdso\]$/);
  });

  it('[heap] is a VMA overlapping [start_brk, brk) (vma_is_initial_heap), not one just below or above it', () => {
    const mm = new MmStruct();
    const sb = mm.startBrk;
    // A read-only mapping just below start_brk (it cannot merge with the heap's VMA).
    map(mm, sb - P, 1, PROT_READ);
    expect(brkSync(mm, sb + 2 * P)).toBe(sb + 2 * P);
    expect(vmaName(vmaAt(mm, sb))).toBe('[heap]');
    expect(vmaAt(mm, sb - P)).not.toBe(vmaAt(mm, sb));
    expect(vmaName(vmaAt(mm, sb - P))).toBeNull();
    // A mapping that starts where brk ends is not the heap.
    map(mm, sb + 2 * P, 1, PROT_READ);
    expect(vmaName(vmaAt(mm, sb + 2 * P))).toBeNull();
    // An empty heap (brk back at start_brk) names nothing.
    const empty = new MmStruct();
    map(empty, empty.startBrk, 1, PROT_READ);
    expect(vmaName(vmaAt(empty, empty.startBrk))).toBeNull();
  });

  it('[stack] is the VMA containing start_stack, its ends included (vma_is_initial_stack)', () => {
    const top = 0x7ffffffff000;
    const at = (startStack: number) => {
      const mm = new MmStruct({ startStack });
      map(mm, top - 4 * P, 4, PROT_READ | PROT_WRITE);
      return vmaName(vmaAt(mm, top - P));
    };
    expect(at(top - 100)).toBe('[stack]');
    expect(at(top)).toBe('[stack]');
    expect(at(top - 4 * P)).toBe('[stack]');
    expect(at(top + P)).toBeNull();
    expect(at(top - 5 * P)).toBeNull();
  });

  it('an mm without a stack names no VMA [stack], not even one at address 0', () => {
    const mm = new MmStruct({ capSysRawio: true, mmapMinAddr: 0 });
    expect(mm.startStack).toBeNull();
    map(mm, 0, 1, PROT_READ);
    expect(vmaName(vmaAt(mm, 0))).toBeNull();
  });
});

describe('procMaps() and mapsEntries()', () => {
  it('list the VMAs overlapping [start, end) in address order, each line ending in a newline', () => {
    const mm = new MmStruct();
    map(mm, A, 1, PROT_READ);
    map(mm, A + 2 * P, 2, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fileOf('/f', 8, 2, 99), 5 * P);
    expect(procMaps(new MmStruct())).toBe('');
    expect(procMaps(mm)).toBe(
      '7f0000000000-7f0000001000 r--p 00000000 00:00 0 \n' +
        `${pad('7f0000002000-7f0000004000 rw-s 00005000 08:02 99 ')} /f\n`,
    );
    expect(procMaps(mm, A + P, A + 3 * P)).toBe(
      `${pad('7f0000002000-7f0000004000 rw-s 00005000 08:02 99 ')} /f\n`,
    );
    expect(procMaps(mm, A + P, A + 2 * P)).toBe('');
    expect(mapsEntries(mm)).toEqual([
      { start: A, end: A + P, perms: 'r--p', offset: 0, devMajor: 0, devMinor: 0, ino: 0, name: null },
      {
        start: A + 2 * P,
        end: A + 4 * P,
        perms: 'rw-s',
        offset: 5 * P,
        devMajor: 8,
        devMinor: 2,
        ino: 99,
        name: '/f',
      },
    ]);
    expect(mapsEntries(mm, A + P, A + 2 * P)).toEqual([]);
    expect(mapsEntries(mm, A + 3 * P).map((e) => e.start)).toEqual([A + 2 * P]);
  });
});

describe('smaps(): Size and Rss per VMA', () => {
  it('counts the present PTEs of each VMA by RSS counter, in KiB', () => {
    const { mm } = makeSystem();
    const B = 0x1000_0000_0000;
    mmapSync(mm, { addr: B, len: 4 * P, prot: PROT_READ | PROT_WRITE, flags: ANON });
    mmapSync(mm, { addr: B + 8 * P, len: 2 * P, prot: PROT_READ | PROT_WRITE, flags: ANON });
    touch(mm, B, 3 * P);
    touch(mm, B + 8 * P, P);
    expect(smaps(mm)).toEqual([
      { line: showMapVma(vmaAt(mm, B)), sizeKb: 16, rssKb: 12, rssByType: [0, 3, 0, 0] },
      { line: showMapVma(vmaAt(mm, B + 8 * P)), sizeKb: 8, rssKb: 4, rssByType: [0, 1, 0, 0] },
    ]);
    expect(smaps(mm, B + 8 * P).map((e) => e.sizeKb)).toEqual([8]);
    // A split VMA counts only its own pages.
    mprotectSync(mm, B + P, P, PROT_READ);
    expect(smaps(mm, B, B + 4 * P).map((e) => [e.sizeKb, e.rssKb])).toEqual([
      [4, 4],
      [4, 4],
      [8, 4],
    ]);
  });
});
