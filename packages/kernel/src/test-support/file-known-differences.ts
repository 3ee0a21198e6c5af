/**
 * Scripts on which @spf/file-backed does not match the host yet, with what differs. Each is run as a test
 * that must FAIL (`it.fails`): when the model is fixed, that test goes red and the entry must be removed.
 */
export const KNOWN_FILE_DIFFERENCES: Record<string, string> = {
  'gen-53.script': 'op 42 touch w (private): host minor, simulator major',
  'readahead-async.script': 'op 13 touch 2512 r: host minor (page cached), simulator major',
};

/**
 * The `generateScript` options of the corpus's `gen-<seed>.script` files (seeds 1 to 60): small windows
 * and files, so files, VMAs and touches keep meeting.
 */
export const FILE_CORPUS_OPTIONS = { files: 3, window: 32, ops: 60, maxFilePages: 24 } as const;
