/**
 * The id space of one simulated system: the numbers that name its mm_structs (`mm#N`), VMAs (`vma#N`),
 * anon_vmas (`anon_vma#N`) and shmem inodes (the inode column of `/proc/PID/maps` for a shared anonymous
 * mapping). Every mm of a system shares one (`MmConfig.ids`, inherited by fork through `childConfig()`), so
 * two runs of the same configuration and seed name their objects identically even inside one host process
 * (the course playground, bench workers, lab graders, tests): nothing is numbered from a module-level counter.
 *
 * Linux has no single counterpart: VMAs and anon_vmas are named here only for traces and reports (the kernel
 * knows them by address), and shmem inode numbers model `get_next_ino()` in fs/inode.c, a counter per
 * booted kernel (handed out in per-CPU batches there; here in order, since our order is already
 * deterministic). Inode numbers start at 1, as `get_next_ino()` never returns 0; the others start at 0.
 */
export class MmIds {
  private mm = 0;
  private vma = 0;
  private anonVma = 0;
  private ino = 1;

  /** The next mm_struct's number. */
  nextMm(): number {
    return this.mm++;
  }

  /** The next VMA's number. */
  nextVma(): number {
    return this.vma++;
  }

  /** The next anon_vma's number. */
  nextAnonVma(): number {
    return this.anonVma++;
  }

  /** Models `get_next_ino()` in fs/inode.c: the next inode number of an in-memory file (shmem_zero_setup()). */
  nextIno(): number {
    return this.ino++;
  }
}
