import { classicFaultHandler, type FaultHandlerFactory } from '@spf/fault-classic';

let current: FaultHandlerFactory = classicFaultHandler;

/**
 * The factory {@link boot} uses when `BootConfig.faultHandler` is absent: the classic handler, unless the
 * kernel's test matrix replaced it (see {@link setDefaultFaultHandler}).
 */
export function defaultFaultHandler(): FaultHandlerFactory {
  return current;
}

/**
 * Replaces the default fault handler of every later {@link boot} in this module instance, or restores the
 * classic one with `null`. Only the kernel's test setup calls it (src/test-support/matrix-setup.ts, driven by
 * `SPF_FAULT_HANDLER`), so that every test which boots without naming a handler runs under the handler the
 * matrix is checking; it is not part of the public API, since a process-wide default would make one
 * program's boot depend on another's.
 */
export function setDefaultFaultHandler(factory: FaultHandlerFactory | null): void {
  current = factory ?? classicFaultHandler;
}
