import { mergeConfig } from 'vitest/config';
import { sharedConfig } from '../../vitest.shared.js';

// The setup file makes SPF_FAULT_HANDLER boot()'s default handler: the kernel's test matrix.
export default mergeConfig(sharedConfig, {
  test: { setupFiles: ['src/test-support/matrix-setup.ts'] },
});
