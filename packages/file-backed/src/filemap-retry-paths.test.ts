import { PROT_READ, MAP_SHARED } from '@spf/vma';
import { describe, expect, it } from 'vitest';
import { fileRead } from './file-ops.js';
import { builtinFilemapRetryPaths } from './filemap.js';
import type { FilemapRetryPaths } from './filemap-retry-paths.js';
import { makeFileFixture, patternByte } from './test-support/fixture.js';

const A = 0x4000_0000;
const P = 4096;

/** Paths that record each call and then run the package's own. */
function recording(calls: string[]): FilemapRetryPaths {
  return {
    *maybeUnlockMmapForIo(vmf, fpin) {
      const out = yield* builtinFilemapRetryPaths.maybeUnlockMmapForIo(vmf, fpin);
      calls.push(
        `maybe_unlock ${fpin === null ? 'first' : 'pinned'} -> ${out === null ? 'kept' : 'dropped'}`,
      );
      return out;
    },
    *lockFolioMaybeDropMmap(vmf, folio, fpin) {
      calls.push(`lock_folio ${folio.index}`);
      return yield* builtinFilemapRetryPaths.lockFolioMaybeDropMmap(vmf, folio, fpin);
    },
    *outRetry(folio, fpin, ret) {
      calls.push(`out_retry ${folio?.index ?? '-'} ${fpin === null ? 'unpinned' : 'pinned'}`);
      return yield* builtinFilemapRetryPaths.outRetry(folio, fpin, ret);
    },
  };
}

describe('the retryPaths injection point of filemap_fault', () => {
  it('a major fault drops the lock through the injected pieces, pinning the file until out_retry', () => {
    const calls: string[] = [];
    const fx = makeFileFixture({ retryPaths: recording(calls) });
    const f = fx.makeFile(1, 4);
    fx.evict(f);
    fx.mmapFile(A, 4, PROT_READ, MAP_SHARED, f);
    const refs = f.fCount;
    expect(fx.touch(A + 2 * P, 'r')).toEqual({ ok: true, value: patternByte(1, 2, 0) });
    expect(calls).toEqual([
      'maybe_unlock first -> dropped', // do_sync_mmap_readahead
      'lock_folio 2', // runSync completes the read at once: the trylock succeeds
      'out_retry 2 pinned',
    ]);
    expect(f.fCount).toBe(refs);
    expect([fx.task.minflt, fx.task.majflt]).toEqual([0, 1]);
  });

  it('pieces that never drop the lock still give the right data, with no retry', () => {
    const keep: FilemapRetryPaths = {
      *maybeUnlockMmapForIo(_vmf, fpin) {
        return fpin;
      },
      lockFolioMaybeDropMmap: builtinFilemapRetryPaths.lockFolioMaybeDropMmap,
      outRetry: builtinFilemapRetryPaths.outRetry,
    };
    const fx = makeFileFixture({ retryPaths: keep });
    const f = fx.makeFile(2, 4);
    fx.evict(f);
    fx.mmapFile(A, 4, PROT_READ, MAP_SHARED, f);
    expect(fx.touch(A + P, 'r')).toEqual({ ok: true, value: patternByte(2, 1, 0) });
    expect(fx.env.vmstat.retries).toBe(0);
    expect([fx.task.minflt, fx.task.majflt]).toEqual([0, 1]);
  });
});

describe('Inode.badPages: a page the disk cannot read', () => {
  it('read(2) says EIO; a fault gets SIGBUS after one retry; the other pages read fine', () => {
    const fx = makeFileFixture();
    const f = fx.makeFile(3, 4);
    fx.evict(f);
    f.inode.badPages.add(2);
    const r = fx.run(fileRead(f, 2 * P, 10));
    expect(r).toEqual({ ok: false, errno: 5 });
    fx.mmapFile(A, 4, PROT_READ, MAP_SHARED, f);
    expect(fx.touch(A + P, 'r')).toEqual({ ok: true, value: patternByte(3, 1, 0) });
    const retries = fx.env.vmstat.retries;
    expect(fx.touch(A + 2 * P, 'r')).toEqual({ kind: 'sigbus', address: A + 2 * P });
    expect(fx.env.vmstat.retries - retries).toBe(1);
    expect(f.mapping.iPages.peek(2)?.test('uptodate')).toBe(false);
  });
});
