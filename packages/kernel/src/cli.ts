#!/usr/bin/env node
import { runCliAsync } from './cli-main.js';
import { nodeCliIo } from './node-cli-io.js';

process.exitCode = await runCliAsync(process.argv.slice(2), nodeCliIo, {
  tty: process.stderr.isTTY === true,
});
