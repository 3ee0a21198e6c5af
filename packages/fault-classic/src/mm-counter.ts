import { type Kernel, MemoryLine, self, writeEffect } from '@spf/machine';
import type { MmStruct } from '@spf/vma';

const percpuLines = new WeakMap<MmStruct, MemoryLine[]>();

/**
 * Models `add_mm_counter()` (include/linux/mm.h) on Linux 6.2 and later, where `mm->rss_stat` is a
 * `percpu_counter`: the update is a store to this CPU's own counter, so concurrent faults on different
 * CPUs never bounce a shared line. (@spf/vma's `MmStruct.addMmCounter` writes one shared line, the
 * pre-5.x atomic counter; the fault path uses this one so that the scaling experiment measures the
 * mmap_lock and not an RSS counter Linux no longer shares.) The value lands in `mm.rss` at once:
 * `get_mm_counter()` readers sum the per-CPU parts, which this models exactly.
 */
export function* addMmCounterPercpu(mm: MmStruct, type: number, delta: number): Kernel<void> {
  const { cpu } = yield* self();
  let lines = percpuLines.get(mm);
  if (lines === undefined) {
    lines = [];
    percpuLines.set(mm, lines);
  }
  let line = lines[cpu];
  if (line === undefined) {
    line = new MemoryLine(`${mm.name}->rss_stat[cpu${cpu}]`);
    lines[cpu] = line;
  }
  yield writeEffect(line, 'add_mm_counter');
  mm.rss[type] += delta;
}
