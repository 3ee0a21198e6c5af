import { describe, expect, it } from 'vitest';
import { debugLinkHash, parseDebugLink } from './debug-link.js';

describe('debugger links', () => {
  it('round-trip a test, a step and a schedule (with the characters schedules use)', () => {
    const link = { test: 'rwsem-atomic-reader-count', step: 42, schedule: 's1:3*6,2*15,1*14,0*11,1' };
    const hash = debugLinkHash(link);
    expect(hash.split('&')).toHaveLength(3); // the schedule's characters do not split the fragment
    expect(parseDebugLink(`#${hash}`)).toEqual(link);
  });

  it('ignore fragments that are not a complete debugger link', () => {
    expect(parseDebugLink('#overview')).toBeUndefined();
    expect(parseDebugLink('#debug=t&step=0&schedule=s1:0')).toBeUndefined();
    expect(parseDebugLink('#debug=t&step=3&schedule=nope')).toBeUndefined();
    expect(parseDebugLink('#debug=t&schedule=s1:0')).toBeUndefined();
  });
});
