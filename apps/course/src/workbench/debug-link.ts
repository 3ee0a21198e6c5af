/**
 * The link that reopens a failure in the schedule debugger: the lab page's address with
 * `#debug=<test>&step=<n>&schedule=<schedule>`. Opening it grades the saved code again, replays that
 * schedule in that test (instead of exploring) and shows step n.
 */
export type DebugLink = { readonly test: string; readonly step: number; readonly schedule: string };

/** The fragment (without `#`) of a link to `link`. */
export function debugLinkHash(link: DebugLink): string {
  const p = new URLSearchParams({ debug: link.test, step: String(link.step), schedule: link.schedule });
  return p.toString();
}

/** Reads a debugger link from a location's hash (`#debug=…`); undefined when it is not one or is malformed. */
export function parseDebugLink(hash: string): DebugLink | undefined {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const test = p.get('debug');
  const schedule = p.get('schedule');
  const step = Number(p.get('step'));
  if (!test || !schedule || !/^s1:/.test(schedule) || !Number.isInteger(step) || step < 1) return undefined;
  return { test, step, schedule };
}
