/** One CPU's state at the moment a run failed. */
export type CpuReport = {
  readonly cpu: number;
  readonly clock: number;
  readonly irqsEnabled: boolean;
  /** Running task, or null when idle. */
  readonly task: string | null;
  /** What the task (or interrupt handler) is about to do. */
  readonly next: string;
  readonly inIrq: boolean;
  readonly queuedTasks: readonly string[];
  readonly pendingIpis: number;
};

/** One performed step, as kept in the failure report's history. */
export type EventRecord = {
  readonly step: number;
  readonly cpu: number;
  readonly time: number;
  readonly what: string;
};

/**
 * Why and where a run stopped. `schedule` replays the run up to the failure exactly, with the same machine
 * configuration.
 */
export type FailureReport = {
  /** `assertion`, `deadlock`, `step-limit`, `use-after-free`, `exception`, or a kind a package defines. */
  readonly kind: string;
  readonly message: string;
  /** CPU and task on which it happened (-1 / null for whole-machine failures such as deadlock). */
  readonly cpu: number;
  readonly task: string | null;
  readonly step: number;
  readonly time: number;
  readonly policy: string;
  readonly seed: number;
  readonly schedule: string;
  readonly cpus: readonly CpuReport[];
  readonly lastEvents: readonly EventRecord[];
  /** Host stack of the error, for exceptions thrown by kernel code. */
  readonly stack?: string;
};

/** Renders a failure report for a terminal or a test log. */
export function formatFailure(f: FailureReport, opts: { replayHint?: string } = {}): string {
  const lines: string[] = [];
  lines.push(`${f.kind.toUpperCase()}: ${f.message}`);
  lines.push(
    `  at step ${f.step}, t=${f.time}ns${f.cpu >= 0 ? `, CPU ${f.cpu}` : ''}${f.task ? `, task ${f.task}` : ''} (policy ${f.policy}, seed ${f.seed})`,
  );
  lines.push('  CPUs:');
  for (const c of f.cpus) {
    lines.push(
      `    CPU ${c.cpu}: ${c.task ?? 'idle'}${c.inIrq ? ' [in IPI handler]' : ''} irqs ${c.irqsEnabled ? 'on' : 'off'} t=${c.clock}ns next: ${c.next}${c.queuedTasks.length ? ` runqueue: ${c.queuedTasks.join(', ')}` : ''}${c.pendingIpis ? ` pending IPIs: ${c.pendingIpis}` : ''}`,
    );
  }
  if (f.lastEvents.length) {
    lines.push('  last events:');
    for (const e of f.lastEvents) lines.push(`    #${e.step} CPU ${e.cpu} t=${e.time}ns ${e.what}`);
  }
  if (f.stack) {
    lines.push('  stack:');
    for (const s of f.stack.split('\n').slice(1, 12)) lines.push(`    ${s.trim()}`);
  }
  lines.push(`  schedule: ${f.schedule}`);
  if (opts.replayHint) lines.push(`  replay: ${opts.replayHint}`);
  return lines.join('\n');
}
