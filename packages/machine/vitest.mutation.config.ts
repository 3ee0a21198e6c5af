import { defineConfig } from 'vitest/config';
import { sharedConfig } from '../../vitest.shared.js';

/**
 * The vitest configuration Stryker runs (see stryker.config.json and scripts/mutation.mjs): the package's
 * ordinary one, limited to the test files in SPF_MUTATION_TESTS (comma-separated globs) when it is set, so
 * that a primitive's mutants are judged by that primitive's own tests. The include list is replaced, not
 * merged: `mergeConfig` would append the globs to the shared include list and select every test.
 */
const only = process.env.SPF_MUTATION_TESTS?.split(',').filter((g) => g !== '');

export default only && only.length > 0
  ? defineConfig({ ...sharedConfig, test: { ...sharedConfig.test, include: only } })
  : sharedConfig;
