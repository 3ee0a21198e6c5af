import { EffectKind, type Kernel, runSync } from '@spf/machine';
import { type RecordedEffect, recordEffects } from './test-support/effects.js';
import { describe, expect, it } from 'vitest';
import { type MmConfig, MmStruct } from './mm-struct.js';
import { vmGetPageProt } from './page-prot.js';
import { mmapSync } from './sync-api.js';
import type { VmArea } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, VM_EXEC, VM_RAND_READ } from './vm-flags.js';
import { vmFlagsReset } from './vm-flags-reset.js';
import { vmaIsWriteLocked } from './vma-lock.js';

/** Runs `body` on the VMA of a one-page read-only anonymous mapping, holding the mmap lock for writing. */
function withLockedVma(body: (vma: VmArea) => void, config: MmConfig = {}): void {
  const mm = new MmStruct(config);
  const r = mmapSync(mm, { addr: 0, len: 4096, prot: PROT_READ, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (!r.ok) throw new Error(`mmap failed: errno ${r.errno}`);
  const vma = mm.findVma(r.value);
  if (vma === null) throw new Error('no VMA at the mapped address');
  runSync(mm.mmapWriteLock());
  try {
    body(vma);
  } finally {
    runSync(mm.mmapWriteUnlock());
  }
}

describe('vmFlagsReset (vma_start_write + vm_flags_reset)', () => {
  it('write-locks the VMA and stores the flags inside one closed write section', () => {
    withLockedVma((vma) => {
      const seq = vma.vmSequence.peek();
      const prot = vma.vmPageProt;
      runSync(vmFlagsReset(vma, vma.vmFlags | VM_RAND_READ));
      expect(vma.vmFlags & VM_RAND_READ).toBe(VM_RAND_READ);
      expect(vmaIsWriteLocked(vma)).toBe(true);
      // One begin/end pair: a speculative reader that sampled `seq` retries; the section is closed again.
      expect(vma.vmSequence.peek()).toBe(seq + 2);
      // Without setPageProt the protection stays as it was (madvise changes no protection bit).
      expect(vma.vmPageProt).toBe(prot);
    });
  });

  it('with setPageProt recomputes vm_page_prot from the new flags, as mprotect needs', () => {
    withLockedVma((vma) => {
      const before = vma.vmPageProt;
      runSync(vmFlagsReset(vma, vma.vmFlags | VM_EXEC, true));
      expect(vma.vmPageProt).toBe(vmGetPageProt(vma.vmFlags));
      expect(vma.vmPageProt).not.toBe(before);
    });
  });

  it('without setPageProt leaves vm_page_prot alone even when the new flags would change it', () => {
    withLockedVma((vma) => {
      const before = vma.vmPageProt;
      runSync(vmFlagsReset(vma, vma.vmFlags | VM_EXEC));
      expect(vma.vmFlags & VM_EXEC).toBe(VM_EXEC);
      expect(vma.vmPageProt).toBe(before);
      expect(vma.vmPageProt).not.toBe(vmGetPageProt(vma.vmFlags));
    });
  });

  it('is the vmFlags site of vma_start_write() by default: switched off, the flags change without the VMA lock', () => {
    withLockedVma(
      (vma) => {
        const seq = vma.vmSequence.peek();
        runSync(vmFlagsReset(vma, vma.vmFlags | VM_RAND_READ));
        expect(vma.vmFlags & VM_RAND_READ).toBe(VM_RAND_READ);
        expect(vmaIsWriteLocked(vma)).toBe(false);
        // The vm_sequence section of the SPF designs stays.
        expect(vma.vmSequence.peek()).toBe(seq + 2);
        // mprotect's own site is still on.
        runSync(vmFlagsReset(vma, vma.vmFlags | VM_EXEC, true, 'mprotect'));
        expect(vmaIsWriteLocked(vma)).toBe(true);
      },
      { vmaLocking: { startWrite: { vmFlags: false } } },
    );
  });

  it('the store is one write of the VMA line, named WRITE_ONCE(vm_flags) in traces, made before the flags change', () => {
    withLockedVma((vma) => {
      const old = vma.vmFlags;
      const seen: RecordedEffect<number>[] = [];
      runSync(recordEffects(vmFlagsReset(vma, old | VM_RAND_READ), () => vma.vmFlags, seen));
      const store = seen.filter((e) => e.label === 'WRITE_ONCE(vm_flags)');
      expect(store).toEqual([
        { kind: EffectKind.Write, line: vma.line, label: 'WRITE_ONCE(vm_flags)', at: old },
      ]);
      expect(vma.vmFlags).toBe(old | VM_RAND_READ);
    });
  });

  it('runs inSection inside the write section, after vm_flags and vm_page_prot are stored (SPF v12 mprotect_fixup)', () => {
    withLockedVma((vma) => {
      const seq = vma.vmSequence.peek();
      const seen: [number, number, bigint][] = [];
      const newFlags = vma.vmFlags | VM_EXEC;
      function* inSection(): Kernel<void> {
        seen.push([vma.vmSequence.peek() - seq, vma.vmFlags, vma.vmPageProt]);
      }
      runSync(vmFlagsReset(vma, newFlags, true, 'mprotect', inSection));
      expect(seen).toEqual([[1, newFlags, vmGetPageProt(newFlags)]]);
      expect(vma.vmSequence.peek()).toBe(seq + 2);
    });
  });
});
