/**
 * An option combination a speculative fault handler refuses at boot, because it is unsafe or because two
 * options contradict each other (for example Dufour's SPF without `pte_special`, or speculative page-table
 * allocation while unmapping frees tables outside `mm->page_table_lock`). Thrown by the handler's factory,
 * so `boot({ faultHandler })` of @spf/kernel fails before any task runs.
 */
export class FaultSpecConfigError extends Error {
  override readonly name = 'FaultSpecConfigError';
  /**
   * @param handler the design refusing (`dufour`, `lespinasse`, `pervma`)
   * @param options the options (or boot settings) that cannot go together, as the user spells them
   * @param reason why, and what to change
   */
  constructor(
    readonly handler: string,
    readonly options: readonly string[],
    readonly reason: string,
  ) {
    super(`${handler} fault handler: ${options.join(' with ')} is refused: ${reason}`);
  }
}
