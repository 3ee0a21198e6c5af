import { ScheduleFormatError } from './errors.js';

/**
 * A schedule is the sequence of CPU choices a run made, one per step. As a string it is run-length encoded:
 * `s1:0*12,1*3,0` means CPU 0 for 12 steps, CPU 1 for 3, then CPU 0 once. Replaying the string with the
 * same configuration reproduces the run exactly.
 */
export const SCHEDULE_PREFIX = 's1:';

/** Encodes CPU choices as a schedule string. */
export function encodeSchedule(choices: ArrayLike<number>, length = choices.length): string {
  const parts: string[] = [];
  let i = 0;
  while (i < length) {
    const c = choices[i];
    let j = i + 1;
    while (j < length && choices[j] === c) j++;
    parts.push(j - i === 1 ? `${c}` : `${c}*${j - i}`);
    i = j;
  }
  return SCHEDULE_PREFIX + parts.join(',');
}

/** Decodes a schedule string; throws {@link ScheduleFormatError} saying what is wrong. */
export function decodeSchedule(schedule: string): number[] {
  if (typeof schedule !== 'string' || !schedule.startsWith(SCHEDULE_PREFIX)) {
    throw new ScheduleFormatError(
      `a schedule must start with '${SCHEDULE_PREFIX}' (e.g. 's1:0*3,1'), got ${JSON.stringify(String(schedule).slice(0, 40))}`,
    );
  }
  const body = schedule.slice(SCHEDULE_PREFIX.length).trim();
  const out: number[] = [];
  if (body === '') return out;
  for (const [idx, tok] of body.split(',').entries()) {
    const m = /^(\d{1,4})(?:\*(\d{1,9}))?$/.exec(tok.trim());
    if (!m) {
      throw new ScheduleFormatError(
        `schedule token ${idx + 1} is ${JSON.stringify(tok)}; expected '<cpu>' or '<cpu>*<count>' with decimal numbers`,
      );
    }
    const cpu = Number(m[1]);
    const n = m[2] === undefined ? 1 : Number(m[2]);
    if (n < 1) throw new ScheduleFormatError(`schedule token ${idx + 1} repeats CPU ${cpu} zero times`);
    for (let k = 0; k < n; k++) out.push(cpu);
  }
  return out;
}
