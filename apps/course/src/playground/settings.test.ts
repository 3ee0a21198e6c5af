import { describe, expect, it } from 'vitest';
import { PLAYGROUND_EXAMPLES } from './examples.js';
import {
  DEFAULT_SETTINGS,
  decodeShareFragment,
  encodeShareFragment,
  PlaygroundSettingsError,
  validateSettings,
} from './settings.js';

describe('playground settings and shared links', () => {
  it('round-trips every example (program, non-ASCII text and settings) through a URL fragment', () => {
    for (const e of PLAYGROUND_EXAMPLES) {
      const s = { ...e.settings, source: `${e.settings.source}// é → ✓\n` };
      const f = encodeShareFragment(s);
      expect(f).toMatch(/^pg=[A-Za-z0-9_-]+$/);
      expect(decodeShareFragment(`#${f}`)).toEqual(s);
    }
  });

  it('ignores fragments that are not a shared playground', () => {
    expect(decodeShareFragment('')).toBeNull();
    expect(decodeShareFragment('#debug=x')).toBeNull();
  });

  it('refuses a damaged link or impossible settings with a message that says what is wrong', () => {
    expect(() => decodeShareFragment('#pg=%%%')).toThrow(/not base64url/);
    expect(() => decodeShareFragment('#pg=AAAA')).toThrow(/damaged/);
    const bad = (more: Record<string, unknown>) => () =>
      validateSettings({ ...DEFAULT_SETTINGS, source: '', ...more });
    expect(bad({ cpus: 0 })).toThrow(PlaygroundSettingsError);
    expect(bad({ cpus: 65 })).toThrow(/cpus must be a whole number from 1 to 64/);
    expect(bad({ policy: 'dfs' })).toThrow(/policy must be timed/);
    expect(bad({ explore: 10 })).toThrow(/timed has only one schedule/);
    expect(bad({ mmapLock: 'mutex' })).toThrow(/mmapLock must be one of rwsem, range/);
    expect(bad({ source: 'x'.repeat(70_000) })).toThrow(/at most 65536/);
  });
});
