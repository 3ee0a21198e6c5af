// vitest configuration for bench/explorer.ts (not a test): the shared one plus the setup file that records
// every exploration. Used with `--root <package>`.
import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import { sharedConfig } from '../../../vitest.shared.js';

export default mergeConfig(sharedConfig, {
  test: { setupFiles: [fileURLToPath(new URL('./explore-stats-setup.ts', import.meta.url))] },
});
