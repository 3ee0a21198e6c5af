import { PAGE_SIZE } from '@spf/pagetable';
import type { FaultHandlerFactory, SpeculativeStats } from '@spf/fault-classic';
import type { Policy } from '@spf/machine';
import { errnoName, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@spf/vma';
import { boot, type SystemRunResult } from '../system.js';

/** Options of {@link runCowFork}. */
export interface CowForkOptions {
  /** Pages the parent fills before forking (default 4). */
  readonly pages?: number;
  readonly zeroPage?: boolean;
  readonly trace?: boolean;
  /** Scheduling policy (default `timed()`). */
  readonly policy?: Policy;
  /** The fault handler to boot with (default: the classic handler under mmap_lock). */
  readonly faultHandler?: FaultHandlerFactory;
}

/** What the COW demo printed and the run it came from. */
export interface CowForkResult {
  readonly lines: readonly string[];
  readonly run: SystemRunResult;
  /** The fault handler's name (`classic`, `dufour`, ...). */
  readonly handler: string;
  /** User page faults of both processes (`pgfault` of /proc/vmstat). */
  readonly faults: number;
  /** The speculative handler's attempts, successes and abort reasons; null for the classic handler. */
  readonly speculative: SpeculativeStats | null;
}

/** The most pages {@link runCowFork} fills: 2^20 (4 GiB). */
export const MAX_COW_FORK_PAGES = 2 ** 20;

/** Throws a RangeError unless `pages` is a page count {@link runCowFork} accepts (1 to 2^20). */
export function checkCowForkOptions(pages: number): void {
  if (!Number.isInteger(pages) || pages < 1 || pages > MAX_COW_FORK_PAGES) {
    throw new RangeError(`pages must be an integer from 1 to ${MAX_COW_FORK_PAGES}, got ${pages}`);
  }
}

/**
 * The copy-on-write demo: a parent fills some pages, forks; the child reads them (no faults: they are
 * shared), writes one (a COW copy), and exits; the parent then finds its own contents unchanged and writes
 * the same page again, which is now exclusive to it and reused in place. Prints what each side saw and
 * the fault counts. If the parent cannot map or fill its pages (ENOMEM, or the OOM killer), the lines stop
 * there and the run's process list and log say how it ended.
 */
export function runCowFork(opts: CowForkOptions = {}): CowForkResult {
  const pages = opts.pages ?? 4;
  checkCowForkOptions(pages);
  const lines: string[] = [];
  const system = boot({
    cpus: 2,
    zeroPage: opts.zeroPage,
    trace: opts.trace,
    policy: opts.policy,
    faultHandler: opts.faultHandler,
  });
  system.spawnProcess('parent', function* (u) {
    const r = yield* u.mmap(0, pages * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (!r.ok) {
      lines.push(`parent: mmap of ${pages} pages failed with ${errnoName(r.errno)}`);
      yield* u.exit(1);
      return;
    }
    const base = r.value;
    for (let p = 0; p < pages; p++) yield* u.store8(base + p * PAGE_SIZE, 0x10 + p);
    lines.push(
      `parent: filled ${pages} pages at 0x${base.toString(16)}; faults so far min=${u.rusage().minflt}`,
    );
    const forked = yield* u.fork(function* (c) {
      const before = c.rusage().minflt;
      const seen: number[] = [];
      for (let p = 0; p < pages; p++) seen.push(yield* c.load8(base + p * PAGE_SIZE));
      lines.push(
        `child:  reads ${seen.map((v) => `0x${v.toString(16)}`).join(' ')} with ${c.rusage().minflt - before} faults (pages shared)`,
      );
      yield* c.store8(base, 0xcc);
      lines.push(`child:  wrote 0xcc to page 0: ${c.rusage().minflt - before} fault (copy-on-write copy)`);
      lines.push(`child:  page 0 now reads 0x${(yield* c.load8(base)).toString(16)}`);
      yield* c.exit(0);
    }, 1);
    if (!forked.ok) throw new Error(`fork failed with errno ${forked.errno}`);
    const child = forked.value;
    const waited = yield* u.wait(child);
    if (!waited.ok) throw new Error(`wait for child ${child} failed with errno ${waited.errno}`);
    const status = waited.value;
    const before = u.rusage().minflt;
    lines.push(
      `parent: child ${child} ${status.kind === 'exited' ? `exited with ${status.code}` : 'was killed'}`,
    );
    lines.push(`parent: page 0 still reads 0x${(yield* u.load8(base)).toString(16)}`);
    yield* u.store8(base, 0xaa);
    lines.push(
      `parent: wrote 0xaa to page 0: ${u.rusage().minflt - before} fault (the page is exclusive again: reused, not copied)`,
    );
    lines.push(
      `vmstat: pgfault=${system.vmstat.pgfault} cow-copies=${system.vmstat.cowCopies} cow-reuses=${system.vmstat.cowReuses}`,
    );
  });
  const run = system.run();
  if (!run.ok) throw new Error(`cow-fork run failed: ${run.failure?.kind}: ${run.failure?.message}`);
  return {
    lines,
    run,
    handler: system.faultHandler.name,
    faults: system.vmstat.pgfault,
    speculative: system.faultHandler.speculativeStats?.() ?? null,
  };
}
