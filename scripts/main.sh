#!/usr/bin/env bash
# `npm start`: the main job on a fresh machine. Sets up (idempotent) and builds, checks the host
# (tortie-node doctor), then runs the lab: a 3-node tortie cluster in network namespaces that
# prints its connectivity matrix and stays up until Ctrl-C (`npm start -- --once` exits at once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh main
node bin/tortie-node.js doctor
exec node bin/tortie-lab.js "$@"
