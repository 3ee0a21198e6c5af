// @spf/fault-spec: the speculative page-fault designs, each a FaultHandlerFactory for @spf/kernel's boot().
export { FaultSpecConfigError } from './fault-spec-config-error.js';
export * from './lespinasse/index.js';
export * from './dufour/index.js';
export * from './per-vma/index.js';
