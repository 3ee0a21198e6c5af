// vitest setup file of @spf/kernel (vitest.config.ts): under SPF_FAULT_HANDLER=<name>, every boot() that
// names no fault handler gets that one, so the whole suite runs under it (the kernel's test matrix).
import { setDefaultFaultHandler } from '../default-fault-handler.js';
import { faultHandlerByName } from '../fault-handlers.js';
import { matrixHandlerName, matrixHandlerOptions } from './handler-matrix.js';

const name = matrixHandlerName();
setDefaultFaultHandler(name === 'classic' ? null : faultHandlerByName(name, matrixHandlerOptions()));
