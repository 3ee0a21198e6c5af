import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built site's directory. */
export const DIST = fileURLToPath(new URL('../dist', import.meta.url));

/**
 * Builds the site (API reference included) if dist/ is missing, as `pnpm run build` would from a shell.
 * Vitest's variables are left out (NODE_ENV=test, MODE, DEV, PROD, VITEST...): with them Astro builds a
 * development site, whose search box only says "Search is only available in production builds".
 */
export function ensureBuilt(): void {
  if (existsSync(`${DIST}/labs/lab1/index.html`)) return;
  const r = spawnSync('sh', ['-c', 'node scripts/api-docs.mjs && npx astro build'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    env: { ...shellEnv(), ASTRO_TELEMETRY_DISABLED: '1' },
  });
  if (r.status !== 0) throw new Error(`astro build failed:\n${r.stdout}\n${r.stderr}`);
}

/** The environment without what vitest adds to it. */
function shellEnv(): NodeJS.ProcessEnv {
  const vitestKeys = new Set(['NODE_ENV', 'MODE', 'DEV', 'PROD', 'SSR', 'BASE_URL', 'TEST']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !vitestKeys.has(k) && !k.startsWith('VITEST')),
  );
}
