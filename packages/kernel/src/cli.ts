#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { toChromeTrace } from '@spf/machine';
import { runCli } from './cli-main.js';

const code = runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readFile: (path) => (path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8')),
  writeFile: (path, text) => writeFileSync(path, text),
  chromeTrace: toChromeTrace,
});
process.exitCode = code;
