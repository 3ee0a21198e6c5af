#!/usr/bin/env node
import { runBenchCli } from './cli-main.js';

process.exitCode = await runBenchCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  tty: process.stderr.isTTY === true,
});
