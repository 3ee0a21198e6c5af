import { Rcu } from '@spf/locks';
import { type Kernel, runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { getVma, MmStruct, putVma, type VmFileRelease, VmFileReleaseConfigError } from './mm-struct.js';
import { forkSync, mmapSync, mprotectSync, munmapSync } from './sync-api.js';
import type { VmFile } from './vm-area.js';
import { MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE } from './vm-flags.js';

const A = 0x5000_0000;
const P = 4096;

/** A file that counts its references (`f_count` without an fd: only VMAs hold it). */
class CountedFile implements VmFile {
  readonly path = '/data';
  readonly devMajor = 8;
  readonly devMinor = 1;
  readonly ino = 7;
  refs = 0;
  get(): void {
    this.refs++;
  }
  *put(): Kernel<void> {
    if (this.refs <= 0) throw new Error('fput of a file with no reference');
    this.refs--;
  }
}

/**
 * An mm mapping a 4-page file. Its RCU is one the test owns (an mm's own one runs a grace period at the end
 * of every synchronous syscall), so a grace period passes only at `mm.rcu.synchronize()`.
 */
function mapped(mode: VmFileRelease, pages = 4): { mm: MmStruct; file: CountedFile } {
  const mm = new MmStruct({ vmFileRelease: mode, rcu: new Rcu(1) });
  const file = new CountedFile();
  const r = mmapSync(mm, {
    addr: A,
    len: pages * P,
    prot: PROT_READ,
    flags: MAP_SHARED | MAP_FIXED,
    file: { file, ops: {} },
  });
  expect(r.ok).toBe(true);
  expect(file.refs).toBe(1);
  return { mm, file };
}

describe('MmConfig.vmFileRelease: where a VMA drops its file reference', () => {
  it('removeVma (default): munmap drops it even while a speculative VMA reference is held', () => {
    const { mm, file } = mapped('removeVma');
    const vma = mm.findVma(A);
    if (vma === null) throw new Error('no VMA');
    runSync(getVma(vma));
    munmapSync(mm, A, 4 * P);
    expect(file.refs).toBe(0);
    runSync(putVma(vma));
    expect(file.refs).toBe(0);
  });

  it('freeVma: the last put_vma (__free_vma) drops it', () => {
    const { mm, file } = mapped('freeVma');
    const vma = mm.findVma(A);
    if (vma === null) throw new Error('no VMA');
    runSync(getVma(vma));
    munmapSync(mm, A, 4 * P);
    expect(file.refs).toBe(1);
    runSync(putVma(vma));
    expect(file.refs).toBe(0);
  });

  it('rcu: dropped only after a grace period following the last reference', () => {
    const { mm, file } = mapped('rcu');
    munmapSync(mm, A, 4 * P);
    expect(file.refs).toBe(1);
    runSync(mm.rcu.synchronize());
    expect(file.refs).toBe(0);
  });

  for (const mode of ['removeVma', 'freeVma', 'rcu'] as const) {
    it(`${mode}: a split and a merge back keep exactly one reference per VMA`, () => {
      const { mm, file } = mapped(mode);
      expect(mprotectSync(mm, A + P, P, PROT_READ | PROT_WRITE).ok).toBe(true); // 3 VMAs
      expect(file.refs).toBe(3);
      expect(mprotectSync(mm, A + P, P, PROT_READ).ok).toBe(true); // merged back into one
      runSync(mm.rcu.synchronize());
      expect(mm.mapCount).toBe(1);
      expect(file.refs).toBe(1);
      munmapSync(mm, A, 4 * P);
      runSync(mm.rcu.synchronize());
      expect(file.refs).toBe(0);
    });
  }

  it('fork inherits the option', () => {
    const { mm } = mapped('rcu');
    expect(forkSync(mm).vmFileRelease).toBe('rcu');
    expect(new MmStruct().vmFileRelease).toBe('removeVma');
  });

  it('an unknown value is refused with a message naming the choices', () => {
    expect(() => new MmStruct({ vmFileRelease: 'close' as VmFileRelease })).toThrow(VmFileReleaseConfigError);
    expect(() => new MmStruct({ vmFileRelease: 'close' as VmFileRelease })).toThrow(
      /MmConfig.vmFileRelease must be one of 'removeVma', 'freeVma', 'rcu', got "close"/,
    );
  });
});
