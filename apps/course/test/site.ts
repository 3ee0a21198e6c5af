import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built site's directory. */
export const DIST = fileURLToPath(new URL('../dist', import.meta.url));

/** Builds the site (API reference included) if dist/ is missing. */
export function ensureBuilt(): void {
  if (existsSync(`${DIST}/labs/lab1/index.html`)) return;
  const r = spawnSync('sh', ['-c', 'node scripts/api-docs.mjs && npx astro build'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1' },
  });
  if (r.status !== 0) throw new Error(`astro build failed:\n${r.stdout}\n${r.stderr}`);
}
