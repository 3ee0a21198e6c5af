import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { MmStruct } from './mm-struct.js';
import { vmGetPageProt } from './page-prot.js';
import { mmapSync } from './sync-api.js';
import type { VmArea } from './vm-area.js';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, VM_EXEC, VM_RAND_READ } from './vm-flags.js';
import { vmFlagsReset } from './vm-flags-reset.js';
import { vmaIsWriteLocked } from './vma-lock.js';

/** Runs `body` on the VMA of a one-page read-only anonymous mapping, holding the mmap lock for writing. */
function withLockedVma(body: (vma: VmArea) => void): void {
  const mm = new MmStruct();
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
});
