#!/usr/bin/env node
// Thin launcher: the file exists before the package is built, so installing never warns about a missing bin.
import '../dist/cli.js';
