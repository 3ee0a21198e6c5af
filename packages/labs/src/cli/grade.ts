#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { formatReport, formatResult } from '../format-report.js';
import type { Sources } from '../grade.js';
import type { Lab } from '../lab.js';
import { getLab, labs } from '../registry.js';
import { referenceSources, starterSources, variantSources } from '../variants.js';
import { gradeInSandbox } from './sandbox.js';

const USAGE = `usage: spf-grade <lab> [solution-file ...]   grade files (default: the starter)
       spf-grade <lab> --reference | --variant <id>
       spf-grade --list
options: --json  print the report as JSON;  --time-limit <ms>  per-test limit (default 3000)`;

function fail(msg: string): never {
  console.error(`spf-grade: ${msg}\n${USAGE}`);
  process.exit(2);
}

/** Maps solution files to lab files by base name; a single file for a one-file lab may have any name. */
function readSources(lab: Lab, paths: string[]): Sources {
  const sources: Record<string, string> = {};
  for (const p of paths) {
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
    } catch (err) {
      fail(`cannot read ${p}: ${(err as Error).message}`);
    }
    const name = basename(p);
    const target = lab.files.some((f) => f.name === name)
      ? name
      : lab.files.length === 1 && paths.length === 1
        ? lab.files[0].name
        : undefined;
    if (!target)
      fail(`${p} is not a file of ${lab.id} (its files: ${lab.files.map((f) => f.name).join(', ')})`);
    sources[target] = text;
  }
  return sources;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return false;
    args.splice(i, 1);
    return true;
  };
  const option = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined) fail(`${name} needs a value`);
    args.splice(i, 2);
    return v;
  };
  if (flag('--help') || flag('-h')) {
    console.log(USAGE);
    return 0;
  }
  if (flag('--list')) {
    for (const l of labs)
      console.log(`${l.id}\t${l.title} (v${l.version}): ${l.files.map((f) => f.name).join(', ')}`);
    return 0;
  }
  const json = flag('--json');
  const reference = flag('--reference');
  const variant = option('--variant');
  const limit = option('--time-limit');
  const testTimeLimitMs = limit === undefined ? undefined : Number(limit);
  if (testTimeLimitMs !== undefined && !(testTimeLimitMs > 0))
    fail(`--time-limit must be a positive number of ms`);
  const unknown = args.find((a) => a.startsWith('--'));
  if (unknown) fail(`unknown option ${unknown}`);
  const [labId, ...files] = args;
  if (!labId) fail('name a lab');
  let lab: Lab;
  try {
    lab = getLab(labId);
  } catch (err) {
    fail((err as Error).message);
  }
  let sources: Sources;
  if (reference) sources = referenceSources(lab);
  else if (variant !== undefined) sources = variantSources(lab, variant);
  else sources = files.length > 0 ? readSources(lab, files) : starterSources(lab);
  if (!json) console.log(`${lab.title} (${lab.id} v${lab.version})`);
  const printed = new Set<string>();
  const report = await gradeInSandbox(lab, sources, {
    testTimeLimitMs,
    onResult: json
      ? undefined
      : (r) => {
          printed.add(r.id);
          console.log(formatResult(r));
        },
  });
  if (json) console.log(JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? String(v) : v), 2));
  // Results already streamed are not repeated; the rest (skipped after a timeout or load error) and the score.
  else console.log(formatReport({ ...report, results: report.results.filter((r) => !printed.has(r.id)) }));
  return report.score === report.maxScore ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(2);
  },
);
