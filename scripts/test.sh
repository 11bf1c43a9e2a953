#!/usr/bin/env bash
# `npm test`: set up (idempotent), build, then run every test under tap.
# Extra arguments are passed to tap (e.g. `npm test -- dist/test/selector`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- dist/test; fi
exec node node_modules/tap/dist/esm/run.mjs "$@"
