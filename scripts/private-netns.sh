#!/usr/bin/env bash
# Runs a command in a network namespace of its own (a fresh one with only `lo`, brought up), so
# whatever it does on loopback — etcd members on 127.0.0.1, agents' health and metrics ports,
# tortiectl talking to them — happens in a namespace this run created and is gone with it, never
# on the host's own network stack. Namespaces the command creates (`ip netns add`) are unaffected.
# Usage: scripts/private-netns.sh <command> [args…]   (npm test and npm run bench use it)
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 <command> [args…]" >&2; exit 2; }
export TORTIE_PRIVATE_NETNS=1
exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' private-netns "$@"
