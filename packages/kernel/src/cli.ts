#!/usr/bin/env node
import { runCli } from './cli-main.js';
import { nodeCliIo } from './node-cli-io.js';

process.exitCode = runCli(process.argv.slice(2), nodeCliIo);
