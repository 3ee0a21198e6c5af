import { defaultCostModel, EffectKind, type Kernel } from '@spf/machine';
import { InvalidArgumentError, OutOfMemoryError, type Page, PhysicalMemory } from '@spf/pagetable';
import { describe, expect, it } from 'vitest';
import { allocUserPage, allocZeroedUserPage, copyUserPage } from './alloc-page.js';
import { type FaultEnv, makeFaultEnv } from './fault-env.js';

/** Runs `code` to the end alone, returning its value and the delays (`ns`, label) it charged. */
function drive<T>(code: Kernel<T>): { value: T; delays: Array<[number, string | undefined]> } {
  const delays: Array<[number, string | undefined]> = [];
  for (let r = code.next(); ; r = code.next()) {
    if (r.done) return { value: r.value, delays };
    if (r.value.kind === EffectKind.Delay) delays.push([r.value.ns, r.value.label]);
  }
}

function envWith(frames: number): FaultEnv {
  return makeFaultEnv({
    mem: new PhysicalMemory({ size: frames * 4096, zeroPage: false }),
    cost: defaultCostModel,
  });
}

/** Takes every free frame. */
function exhaust(env: FaultEnv): Page[] {
  const taken: Page[] = [];
  for (;;) {
    try {
      taken.push(env.mem.allocPages(0));
    } catch (e) {
      if (e instanceof OutOfMemoryError) return taken;
      throw e;
    }
  }
}

describe('user page allocation', () => {
  it('vma_alloc_zeroed_movable_folio: a zeroed page with one reference, counted in pgalloc, charging clear_page', () => {
    const env = envWith(64);
    const free = env.mem.freeCount;
    const { value: page, delays } = drive(allocZeroedUserPage(env));
    expect(page).not.toBeNull();
    expect(page?.refcount).toBe(1);
    expect(env.mem.read8(page?.pa ?? -1)).toBe(0);
    expect(env.mem.freeCount).toBe(free - 1);
    expect(env.vmstat.pgalloc).toBe(1);
    expect(delays).toEqual([[defaultCostModel.zeroPage, 'clear_page']]);
  });

  it('out of memory is null, with nothing charged or counted', () => {
    const env = envWith(64);
    exhaust(env);
    expect(drive(allocZeroedUserPage(env))).toEqual({ value: null, delays: [] });
    expect(allocUserPage(env)).toBeNull();
    expect(env.vmstat.pgalloc).toBe(0);
  });

  it('folio_prealloc without zeroing: a page with one reference, counted, no clear_page', () => {
    const env = envWith(64);
    const page = allocUserPage(env);
    expect(page?.refcount).toBe(1);
    expect(env.vmstat.pgalloc).toBe(1);
  });

  it('an allocator failure other than out of memory is not mistaken for it', () => {
    const env = envWith(64);
    const broken = {
      ...env,
      mem: {
        allocPages(): Page {
          throw new InvalidArgumentError('order must be an integer from 0 to 10, got -1');
        },
      } as unknown as PhysicalMemory,
    };
    expect(() => allocUserPage(broken)).toThrow(InvalidArgumentError);
  });

  it('copy_user_highpage copies the whole page and charges copy_page', () => {
    const env = envWith(64);
    const src = env.mem.allocPages(0);
    const dst = env.mem.allocPages(0);
    env.mem.write8(src.pa, 0x11);
    env.mem.write8(src.pa + 4095, 0x22);
    const { delays } = drive(copyUserPage(env, dst, src));
    expect([env.mem.read8(dst.pa), env.mem.read8(dst.pa + 4095)]).toEqual([0x11, 0x22]);
    expect(delays).toEqual([[defaultCostModel.copyPage, 'copy_page']]);
  });
});
