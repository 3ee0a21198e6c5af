import { describe, expect, it } from 'vitest';
import { ScheduleFormatError } from './errors.js';
import { decodeSchedule, encodeSchedule, SCHEDULE_PREFIX } from './schedule.js';

describe('encodeSchedule', () => {
  it('run-length encodes the choices after the s1: prefix', () => {
    expect(SCHEDULE_PREFIX).toBe('s1:');
    expect(encodeSchedule([0, 0, 0, 1, 2, 2, 0])).toBe('s1:0*3,1,2*2,0');
    expect(encodeSchedule([5])).toBe('s1:5');
    expect(encodeSchedule([1, 1])).toBe('s1:1*2');
    expect(encodeSchedule([])).toBe('s1:');
  });

  it('encodes only the first `length` choices (a recording buffer longer than the run)', () => {
    const buf = Int32Array.from([3, 3, 1, 1, 1, 7]);
    expect(encodeSchedule(buf, 4)).toBe('s1:3*2,1*2');
    expect(encodeSchedule(buf, 0)).toBe('s1:');
  });

  it('round-trips through decodeSchedule', () => {
    const choices = [0, 1, 1, 1, 0, 3, 3, 12, 0, 0];
    expect(decodeSchedule(encodeSchedule(choices))).toEqual(choices);
  });
});

describe('decodeSchedule', () => {
  it('expands runs and single CPUs, tolerating spaces around tokens', () => {
    expect(decodeSchedule('s1:0*3,1,2*2')).toEqual([0, 0, 0, 1, 2, 2]);
    expect(decodeSchedule('s1: 4 , 1*2 ')).toEqual([4, 1, 1]);
    expect(decodeSchedule('s1:1023*1')).toEqual([1023]);
    expect(decodeSchedule('s1:')).toEqual([]);
    expect(decodeSchedule('s1:  ')).toEqual([]);
  });

  it('rejects a string without the prefix, saying what it got', () => {
    expect(() => decodeSchedule('0,1')).toThrow(ScheduleFormatError);
    expect(() => decodeSchedule('0,1')).toThrow(
      `a schedule must start with 's1:' (e.g. 's1:0*3,1'), got "0,1"`,
    );
    expect(() => decodeSchedule(`x${'9'.repeat(60)}`)).toThrow(`got "x${'9'.repeat(39)}"`);
    expect(() => decodeSchedule(42 as unknown as string)).toThrow(/got "42"$/);
  });

  it('rejects malformed tokens with their position', () => {
    const bad = ['x', '1*', '*2', '1*2*3', '-1', '1.5', '12345', '1*1234567890', '0x1', '1 2', '', '1*a'];
    for (const tok of bad) {
      expect(() => decodeSchedule(`s1:0,${tok}`)).toThrow(ScheduleFormatError);
      expect(() => decodeSchedule(`s1:0,${tok}`)).toThrow(
        `schedule token 2 is ${JSON.stringify(tok)}; expected '<cpu>' or '<cpu>*<count>' with decimal numbers`,
      );
    }
    expect(() => decodeSchedule('s1:a1')).toThrow(/token 1 is "a1"/);
    expect(() => decodeSchedule('s1:1a')).toThrow(/token 1 is "1a"/);
  });

  it('rejects a run of zero steps, and accepts the longest counts', () => {
    expect(() => decodeSchedule('s1:1,2*0')).toThrow('schedule token 2 repeats CPU 2 zero times');
    expect(decodeSchedule('s1:2*1')).toEqual([2]);
    expect(decodeSchedule('s1:9999*4')).toEqual([9999, 9999, 9999, 9999]);
    expect(decodeSchedule('s1:1*100000').length).toBe(100000);
  });
});
