#!/usr/bin/env bash
# Gradescope autograder setup for an spf lab: Gradescope runs this once, as root, when it builds the
# autograder image; the autograder zip is unpacked in /autograder/source. The zip holds this file,
# run_autograder, config.env, tests/ (your hidden tests) and, until @spf/labs is published on npm, the
# packed packages (spf-*.tgz, made with `pnpm pack` in packages/machine, pagetable, locks and labs).
set -euo pipefail
SOURCE="${AUTOGRADER:-/autograder}/source"
cd "$SOURCE"
# Node.js 20.19 or newer (Gradescope's Ubuntu images have none, or an old one).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then
  curl -fsSL https://deb.nodesource.com/setup_20.x | bash -
  apt-get install -y nodejs
fi
if ls spf-*.tgz >/dev/null 2>&1; then
  npm install --no-audit --no-fund ./spf-*.tgz
else
  npm install --no-audit --no-fund @spf/labs
fi
