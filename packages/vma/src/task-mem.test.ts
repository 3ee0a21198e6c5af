import { runSync } from '@spf/machine';
import { describe, expect, it } from 'vitest';
import { addMmCounter, type RssCounter } from './memory/mm-counter.js';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, MmStruct } from './mm-struct.js';
import { mmapSync } from './sync-api.js';
import { taskMemRss } from './task-mem.js';
import { makeSystem, touch } from './test-support/system.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './vm-flags.js';

const A = 0x1000_0000;

describe('task_mem: the RSS lines of /proc/PID/status', () => {
  it('reports each counter in kB, VmRSS as anon + file + shmem (not swap)', () => {
    const { mm } = makeSystem();
    expect(runSync(taskMemRss(mm))).toEqual({
      vmRssKb: 0,
      rssAnonKb: 0,
      rssFileKb: 0,
      rssShmemKb: 0,
      vmSwapKb: 0,
    });
    mmapSync(mm, {
      addr: A,
      len: 3 * 4096,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
    });
    touch(mm, A, 3 * 4096);
    runSync(addMmCounter(mm, MM_FILEPAGES, 2));
    runSync(addMmCounter(mm, MM_SHMEMPAGES, 5));
    runSync(addMmCounter(mm, MM_SWAPENTS, 7));
    expect(runSync(taskMemRss(mm))).toEqual({
      vmRssKb: 40,
      rssAnonKb: 12,
      rssFileKb: 8,
      rssShmemKb: 20,
      vmSwapKb: 28,
    });
  });

  it('reads the exact sums of per-CPU counters, not their lagging cheap reads (Linux 6.16)', () => {
    const exact = [3, 1, 4, 2];
    const mm = new MmStruct({
      rssCounting: ({ type }): RssCounter => ({
        *add() {},
        *read() {
          return 0;
        },
        *sum() {
          return exact[type]!;
        },
      }),
    });
    expect([MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES]).toEqual([0, 1, 2, 3]);
    expect(runSync(taskMemRss(mm))).toEqual({
      vmRssKb: (3 + 1 + 2) * 4,
      rssAnonKb: 4,
      rssFileKb: 12,
      rssShmemKb: 8,
      vmSwapKb: 16,
    });
  });
});
