#!/usr/bin/env bash
# `npm start`: the main job on a fresh machine. Sets up (idempotent), builds, then runs the lab
# when it exists; until then, `tortie-node doctor`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/tortie-node.js doctor "$@"
