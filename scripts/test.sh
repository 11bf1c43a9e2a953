#!/usr/bin/env bash
# `npm test`: set up (idempotent), build, then run every test under tap, then check that the run
# left nothing behind in the kernel (test namespaces, bpffs pins).
# Extra arguments are passed to tap (e.g. `npm test -- dist/test/selector`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ $# -eq 0 ]; then set -- dist/test; fi

leftovers() { { ip netns list 2>/dev/null | awk '{print "netns " $1}' | grep -E '^netns tt' || true; ls -d /sys/fs/bpf/tortie* 2>/dev/null | sed 's/^/pin /' || true; } | sort; }
before=$(leftovers)
rc=0
node node_modules/tap/dist/esm/run.mjs "$@" || rc=$?
after=$(leftovers)
leaked=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
if [ -n "$leaked" ]; then
  echo "# leak check: the test run left these behind:"
  echo "$leaked" | sed 's/^/#   /'
  echo "not ok - leak check: test namespaces or bpffs pins left behind"
  rc=1
else
  echo "# leak check: no test namespaces or bpffs pins left behind"
fi
exit $rc
