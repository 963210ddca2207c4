#!/usr/bin/env bash
# `make demo`: set up (idempotent), then run the dashboard and four local agents with real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec node scripts/demo.mjs "$@"
