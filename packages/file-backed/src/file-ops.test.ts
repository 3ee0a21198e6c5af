import { Errno, MAP_SHARED, munmapSync, PROT_READ, PROT_WRITE } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import {
  fadviseDontneed,
  fileFsync,
  fileRead,
  fileTruncate,
  fileWrite,
  MS_ASYNC,
  MS_SYNC,
  sysMsync,
} from './file-ops.js';
import { makeFileFixture, must, patternByte } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

describe('file syscalls: errors, umount, writeback', () => {
  it('bad input gives the Linux errno and changes nothing', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(1, 2);
    const ro = must(fx.sb.open('f1', { read: true, write: false }));
    const wo = must(fx.sb.open('f1', { read: false, write: true }));
    expect(fx.run(fileTruncate(f, -1))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(fx.run(fileTruncate(f, 1.5))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(fx.run(fileTruncate(ro, 0))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(f.inode.size).toBe(2 * P);
    expect(fx.run(fileWrite(ro, 0, new Uint8Array([1])))).toEqual({ ok: false, errno: Errno.EBADF });
    expect(fx.run(fileRead(wo, 0, 1))).toEqual({ ok: false, errno: Errno.EBADF });
    expect(fx.run(fileRead(f, -1, 1))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(fx.run(fadviseDontneed(f, 0, -1))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(fx.sb.open('missing')).toEqual({ ok: false, errno: Errno.ENOENT });
    expect(fx.sb.open('')).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(must(fx.run(fileRead(f, 0, 1)))[0]).toBe(patternByte(1, 0, 0));
    // A closed file: EBADF.
    fx.run(ro.put());
    expect(fx.run(fileFsync(ro))).toEqual({ ok: false, errno: Errno.EBADF });
    expect(fx.run(fileRead(ro, 0, 1))).toEqual({ ok: false, errno: Errno.EBADF });
  });

  it('umount says EBUSY while a file is open or mapped, and succeeds once the last reference is gone', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(1, 4);
    fx.mmapFile(A, 4, PROT_READ, MAP_SHARED, f);
    expect(f.fCount).toBe(2); // the fd and the VMA
    fx.run(f.put()); // close(fd)
    expect(fx.sb.umount()).toBe(Errno.EBUSY);
    expect(fx.touch(A + P, 'r')).toEqual({ ok: true, value: patternByte(1, 1, 0) });
    expect(must(munmapSync(fx.mm, A, 4 * P))).toBe(0);
    expect(f.released).toBe(true);
    expect(fx.sb.umount()).toBe(0);
    expect(fx.sb.open('f1')).toEqual({ ok: false, errno: Errno.ENODEV });
  });

  it('msync(MS_SYNC) writes a shared mapping back and write-protects it, so the next write notifies again', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(2, 2);
    fx.mmapFile(A, 2, PROT_READ | PROT_WRITE, MAP_SHARED, f);
    let mkwrites = 0;
    const orig = f.mapping;
    expect(fx.touch(A, 'w', 0x99)).toEqual({ ok: true, value: 0 });
    const page = orig.iPages.peek(0);
    expect(page?.test('dirty')).toBe(true);
    expect(f.inode.blocks.get(0)?.[0]).toBe(patternByte(2, 0, 0));
    expect(fx.run(sysMsync(fx.mm, A, 2 * P, MS_SYNC | MS_ASYNC))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(fx.run(sysMsync(fx.mm, A + 1, P, MS_SYNC))).toEqual({ ok: false, errno: Errno.EINVAL });
    expect(must(fx.run(sysMsync(fx.mm, A, 2 * P, MS_SYNC)))).toBe(0);
    expect(f.inode.blocks.get(0)?.[0]).toBe(0x99);
    expect(page?.test('dirty')).toBe(false);
    // The PTE is clean and read-only again: a write faults (a minor fault) and dirties the page again.
    const before = fx.task.minflt;
    expect(fx.touch(A + 8, 'w', 0x98)).toEqual({ ok: true, value: 0 });
    mkwrites = fx.task.minflt - before;
    expect(mkwrites).toBe(1);
    expect(page?.test('dirty')).toBe(true);
    expect(fx.run(sysMsync(fx.mm, A + 16 * P, P, MS_SYNC))).toEqual({ ok: false, errno: Errno.ENOMEM });
  });

  it('fadvise(DONTNEED) drops clean unmapped pages only; fsync first makes dirty ones clean', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(3, 8);
    fx.mmapFile(A, 1, PROT_READ, MAP_SHARED, f);
    expect(fx.touch(A, 'r')).toEqual({ ok: true, value: patternByte(3, 0, 0) });
    must(fx.run(fileWrite(f, 5 * P, new Uint8Array([7]))));
    must(fx.run(fadviseDontneed(f, 0, 0)));
    // Page 0 is mapped (kept); page 5 was dirty: writeback started, so it is under writeback or clean and
    // is evicted only if the write already completed (under runSync the device completes at once).
    expect(f.mapping.iPages.peek(0)).not.toBeNull();
    expect(f.inode.blocks.get(5)?.[0]).toBe(7);
    expect(f.mapping.iPages.entries().map(([i]) => i)).toEqual([0]);
    expect(must(fx.run(fileRead(f, 5 * P, 1)))[0]).toBe(7);
  });
});
