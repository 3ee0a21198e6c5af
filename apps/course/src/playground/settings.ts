/**
 * What a playground run is made of: the program (a user program or a replay script) and the machine it runs
 * on. The same object travels to the worker, into the shareable URL and into localStorage.
 */

/** The fault handlers the playground offers: @spf/kernel's registry (`FAULT_HANDLERS`) by name. */
export const PLAYGROUND_HANDLERS = ['classic', 'dufour', 'lespinasse', 'pervma'] as const;
export type PlaygroundHandler = (typeof PLAYGROUND_HANDLERS)[number];

/** The mmap lock kinds of `boot({ mmapLock })`. */
export const PLAYGROUND_MMAP_LOCKS = ['rwsem', 'range'] as const;
export type PlaygroundMmapLock = (typeof PLAYGROUND_MMAP_LOCKS)[number];

/** The most CPUs the playground boots (the machine allows 1024; a page should stay responsive). */
export const PLAYGROUND_MAX_CPUS = 64;
/** The most schedules one exploration tries in the page. */
export const PLAYGROUND_MAX_EXPLORE = 500;
/** The longest program or script the playground accepts, in characters (a URL must carry it). */
export const PLAYGROUND_MAX_SOURCE = 64 * 1024;

export type PlaygroundSettings = {
  /** `program`: TypeScript calling `spawn(...)`; `replay`: a `spf replay` script. */
  readonly mode: 'program' | 'replay';
  readonly source: string;
  /** CPUs of the machine (1 to {@link PLAYGROUND_MAX_CPUS}). */
  readonly cpus: number;
  /** A policy as `parsePolicy` of @spf/machine reads it: `timed`, `random:<seed>`, `pct:<seed>[:<depth>]`. */
  readonly policy: string;
  /** The machine's seed (timing jitter; 0 = none). */
  readonly seed: number;
  readonly handler: PlaygroundHandler;
  /** The design's options, one `key=value` per entry, as `spf --spec-option` takes them. */
  readonly specOptions: readonly string[];
  readonly mmapLock: PlaygroundMmapLock;
  /**
   * 0: one run under `policy`. N > 0: explore up to N schedules of the random or pct policy (@spf/machine's
   * `explore`) and show the first that fails, replayed with a trace.
   */
  readonly explore: number;
};

export const DEFAULT_SETTINGS: Omit<PlaygroundSettings, 'source'> = {
  mode: 'program',
  cpus: 2,
  policy: 'timed',
  seed: 0,
  handler: 'classic',
  specOptions: [],
  mmapLock: 'rwsem',
  explore: 0,
};

/** Settings that cannot describe a run (from a hand-edited URL, say); the message says which field and why. */
export class PlaygroundSettingsError extends Error {
  override name = 'PlaygroundSettingsError';
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** Checks every field and returns a clean copy, or throws {@link PlaygroundSettingsError}. */
export function validateSettings(raw: unknown): PlaygroundSettings {
  if (!isRecord(raw)) throw new PlaygroundSettingsError('playground settings must be an object');
  const { mode, source, cpus, policy, seed, handler, specOptions, mmapLock } = raw;
  const explore = raw.explore ?? 0;
  if (mode !== 'program' && mode !== 'replay') {
    throw new PlaygroundSettingsError(`mode must be "program" or "replay", got ${JSON.stringify(mode)}`);
  }
  if (typeof source !== 'string') throw new PlaygroundSettingsError('source must be a string');
  if (source.length > PLAYGROUND_MAX_SOURCE) {
    throw new PlaygroundSettingsError(
      `the program is ${source.length} characters; the playground takes at most ${PLAYGROUND_MAX_SOURCE}: shorten it`,
    );
  }
  if (typeof cpus !== 'number' || !Number.isInteger(cpus) || cpus < 1 || cpus > PLAYGROUND_MAX_CPUS) {
    throw new PlaygroundSettingsError(
      `cpus must be a whole number from 1 to ${PLAYGROUND_MAX_CPUS}, got ${JSON.stringify(cpus)}`,
    );
  }
  if (typeof policy !== 'string' || !/^(timed|random(:\d+)?|pct(:\d+){0,2})$/.test(policy)) {
    throw new PlaygroundSettingsError(
      `policy must be timed, random:<seed> or pct:<seed>[:<depth>], got ${JSON.stringify(policy)}`,
    );
  }
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new PlaygroundSettingsError(
      `seed must be a whole number in [0, 2^32), got ${JSON.stringify(seed)}`,
    );
  }
  if (!PLAYGROUND_HANDLERS.includes(handler as PlaygroundHandler)) {
    throw new PlaygroundSettingsError(
      `handler must be one of ${PLAYGROUND_HANDLERS.join(', ')}, got ${JSON.stringify(handler)}`,
    );
  }
  if (!Array.isArray(specOptions) || !specOptions.every((o) => typeof o === 'string')) {
    throw new PlaygroundSettingsError('specOptions must be a list of key=value strings');
  }
  if (!PLAYGROUND_MMAP_LOCKS.includes(mmapLock as PlaygroundMmapLock)) {
    throw new PlaygroundSettingsError(
      `mmapLock must be one of ${PLAYGROUND_MMAP_LOCKS.join(', ')}, got ${JSON.stringify(mmapLock)}`,
    );
  }
  if (
    typeof explore !== 'number' ||
    !Number.isInteger(explore) ||
    explore < 0 ||
    explore > PLAYGROUND_MAX_EXPLORE
  ) {
    throw new PlaygroundSettingsError(
      `explore must be a whole number of schedules from 0 (one run) to ${PLAYGROUND_MAX_EXPLORE}, got ${JSON.stringify(explore)}`,
    );
  }
  if (explore > 0 && policy === 'timed') {
    throw new PlaygroundSettingsError(
      'exploring needs a random:<seed> or pct:<seed>[:<depth>] policy: timed has only one schedule',
    );
  }
  return {
    mode,
    source,
    cpus,
    policy,
    seed,
    handler: handler as PlaygroundHandler,
    specOptions: [...(specOptions as string[])],
    mmapLock: mmapLock as PlaygroundMmapLock,
    explore,
  };
}

/** The URL fragment key of a shared playground: `#pg=<base64url of the settings as JSON>`. */
export const SHARE_KEY = 'pg';

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new PlaygroundSettingsError('the shared link is not base64url');
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/**
 * The URL fragment (without `#`) that restores these settings. A fragment, not a query: it never leaves the
 * browser, so a shared program is not sent to any server.
 */
export function encodeShareFragment(s: PlaygroundSettings): string {
  return `${SHARE_KEY}=${toBase64Url(JSON.stringify(validateSettings(s)))}`;
}

/**
 * The settings of a fragment made by {@link encodeShareFragment} (with or without the leading `#`), or null if
 * the fragment is not a shared playground. A fragment that claims to be one but is damaged throws
 * {@link PlaygroundSettingsError} saying what is wrong.
 */
export function decodeShareFragment(fragment: string): PlaygroundSettings | null {
  const f = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  const prefix = `${SHARE_KEY}=`;
  if (!f.startsWith(prefix)) return null;
  let json: unknown;
  try {
    json = JSON.parse(fromBase64Url(f.slice(prefix.length)));
  } catch (e) {
    if (e instanceof PlaygroundSettingsError) throw e;
    throw new PlaygroundSettingsError(
      'the shared link is damaged (its program does not decode): copy the whole link again',
    );
  }
  return validateSettings(json);
}
