#!/usr/bin/env node
// Create packages/<name> with the layout every @spf package shares. Usage:
//   node scripts/new-package.mjs <name> "<description>" [dependency ...]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [name, description, ...deps] = process.argv.slice(2);
if (!name || !description) {
  console.error('usage: node scripts/new-package.mjs <name> "<description>" [dependency ...]');
  process.exit(2);
}
const dir = join(root, 'packages', name);
if (existsSync(join(dir, 'package.json'))) {
  console.error(`packages/${name} already exists`);
  process.exit(1);
}
mkdirSync(join(dir, 'src'), { recursive: true });
const write = (f, s) => writeFileSync(join(dir, f), s);
const pkg = {
  name: `@spf/${name}`,
  version: '0.0.0',
  description,
  license: 'MIT',
  type: 'module',
  sideEffects: false,
  exports: {
    '.': { '@spf/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    './package.json': './package.json',
  },
  types: './dist/index.d.ts',
  files: ['dist', 'src', '!**/*.test.*', '!**/*.tsbuildinfo'],
  engines: { node: '>=20.19' },
  scripts: {
    build: 'tsc -b',
    typecheck: 'tsc -p tsconfig.test.json',
    lint: 'publint --strict && attw --pack . --profile esm-only',
    test: 'vitest run',
    docs: 'typedoc',
  },
  dependencies: Object.fromEntries(deps.map((d) => [`@spf/${d}`, 'workspace:^'])),
  publishConfig: { access: 'public' },
  keywords: ['linux', 'kernel', 'page-fault', 'simulator', 'education'],
};
write('package.json', `${JSON.stringify(pkg, null, 2)}\n`);
const refs = deps.map((d) => ({ path: `../${d}` }));
write(
  'tsconfig.json',
  `${JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
      exclude: ['src/**/*.test.ts', 'src/**/test-support/**'],
      references: refs,
    },
    null,
    2,
  )}\n`,
);
write(
  'tsconfig.test.json',
  `${JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { noEmit: true, composite: false, incremental: false },
      include: ['src', 'bench', 'vitest.config.ts'],
      references: refs,
    },
    null,
    2,
  )}\n`,
);
write(
  'vitest.config.ts',
  "import { sharedConfig } from '../../vitest.shared.js';\n\nexport default sharedConfig;\n",
);
write(
  'typedoc.json',
  `${JSON.stringify(
    {
      $schema: 'https://typedoc.org/schema.json',
      entryPoints: ['src/index.ts'],
      out: 'docs-api',
      tsconfig: 'tsconfig.json',
      disableSources: true,
      excludePrivate: true,
      readme: 'README.md',
      name: `@spf/${name}`,
    },
    null,
    2,
  )}\n`,
);
write('README.md', `# @spf/${name}\n\n${description}\n`);
write('LICENSE', readFileSync(join(root, 'LICENSE'), 'utf8'));
write('src/index.ts', '// Public API of this package.\nexport {};\n');
// Register the project reference at the root.
const rootTs = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
if (!rootTs.references.some((r) => r.path === `packages/${name}`)) {
  rootTs.references.push({ path: `packages/${name}` });
  writeFileSync(join(root, 'tsconfig.json'), `${JSON.stringify(rootTs, null, 2)}\n`);
}
// Format what we generated the way CI checks it.
spawnSync('npx', ['biome', 'format', '--write', dir, join(root, 'tsconfig.json')], {
  cwd: root,
  stdio: 'ignore',
});
console.log(`created packages/${name}; now run: npx -y pnpm@10.34.9 install`);
