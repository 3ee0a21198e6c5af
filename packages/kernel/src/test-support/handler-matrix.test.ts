import { describe, expect, it } from 'vitest';
import { defaultFaultHandler } from '../default-fault-handler.js';
import { faultHandlerByName, UnknownFaultHandlerError } from '../fault-handlers.js';
import { boot } from '../system.js';
import { matrixHandlerName, matrixHandlerNames } from './handler-matrix.js';

describe('the kernel test matrix (SPF_FAULT_HANDLER)', () => {
  it(`boot() without a handler boots the matrix's handler (${matrixHandlerName()} in this run)`, () => {
    expect(boot().faultHandler.name).toBe(matrixHandlerName());
    expect(boot({ faultHandler: faultHandlerByName('pervma') }).faultHandler.name).toBe('pervma');
    expect(defaultFaultHandler()(boot().env).name).toBe(matrixHandlerName());
  });

  it('runs every registered handler but classic (the designs); an unknown name lists the choices', () => {
    expect(matrixHandlerNames()).toEqual(['dufour', 'lespinasse', 'pervma']);
    expect(() => faultHandlerByName('nope')).toThrow(UnknownFaultHandlerError);
    expect(() => faultHandlerByName('nope')).toThrow('choose one of classic, dufour, lespinasse, pervma');
  });
});
