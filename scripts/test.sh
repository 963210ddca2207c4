#!/usr/bin/env bash
# `make test`: set up (idempotent), then every check and test — lint, typecheck, unit, native,
# integration, browser — and one summary line `N passed, N failed` over all suites.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

say() { printf '\033[1;36m==>\033[0m %s\n' "$*"; }
rm -rf .turbo/runs && find . -path ./node_modules -prune -o -type d -name .reports -prune -exec rm -rf {} + 2>/dev/null

say "lint + typecheck (every package)"
pnpm turbo run lint typecheck //#lint:repo --continue --summarize --output-logs=errors-only
checks=$?

# Test suites one package at a time: they start processes pinned to this machine's cores, and
# benchmark-like two-process tests must not fight each other for the CPU.
say "unit, native, integration and browser tests (one package at a time)"
pnpm turbo run test test:e2e --continue --summarize --concurrency=1
tests=$?

node scripts/summary.mjs
status=$?
[ $checks -eq 0 ] && [ $tests -eq 0 ] && [ $status -eq 0 ]
