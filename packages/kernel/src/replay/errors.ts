/** Most characters of a line (or of a detail quoting it) that a {@link ReplayParseError} message repeats. */
export const MAX_QUOTED_CHARS = 200;

/** `s` cut to {@link MAX_QUOTED_CHARS} characters, saying how many were left out. */
function clip(s: string): string {
  if (s.length <= MAX_QUOTED_CHARS) return s;
  return `${s.slice(0, MAX_QUOTED_CHARS)}… (${s.length - MAX_QUOTED_CHARS} more characters)`;
}

/**
 * A replay script line that does not follow the format. Nothing of the script has run when this is thrown:
 * scripts are parsed completely before the first op executes.
 * Its message quotes at most {@link MAX_QUOTED_CHARS} characters of the line; `text` keeps all of it.
 */
export class ReplayParseError extends Error {
  override readonly name = 'ReplayParseError';
  constructor(
    /** 1-based line number in the script. */
    readonly line: number,
    /** The offending line as written (comment stripped, trimmed). */
    readonly text: string,
    /** What the line should have looked like. */
    readonly expected: string,
    /** Why this particular line does not fit, when more can be said than `expected`. */
    readonly detail?: string,
    /** True when the line is well-formed but names a feature that is not implemented yet. */
    readonly unsupported = false,
  ) {
    super(
      `line ${line}: ${expected}; got "${clip(text)}"${detail === undefined ? '' : ` (${clip(detail)})`}`,
    );
  }
}

/** The host cannot run the conformance harness (not Linux, no C compiler, or the build failed). */
export class HostUnavailableError extends Error {
  override readonly name = 'HostUnavailableError';
}

/** The conformance harness ran but failed: it exited non-zero or was killed. */
export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  constructor(
    message: string,
    /** Exit status, or null when a signal killed it. */
    readonly status: number | null,
    /** What the harness wrote to stderr. */
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** Replay output (from the harness or the simulator) that does not follow the observation format. */
export class ReplayOutputError extends Error {
  override readonly name = 'ReplayOutputError';
  constructor(
    /** 1-based line number in the output. */
    readonly line: number,
    /** The offending output line. */
    readonly text: string,
    /** What was expected there. */
    readonly expected: string,
  ) {
    super(`output line ${line}: expected ${expected}; got "${text}"`);
  }
}
