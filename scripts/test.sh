#!/usr/bin/env bash
# `npm test`: set up (idempotent), build, then run every test under tap, then check that the run
# left nothing behind in the kernel (test namespaces, bpffs pins).
# Extra arguments are passed to tap (e.g. `npm test -- dist/test/selector`).
# The TAP stream (with the tests' stderr) is kept in test-results/tap.log (gitignored; CI keeps it
# as an artifact); the ten slowest test files are listed at the end.
# Coverage is off (V8 coverage in every test process and every node child cost about a sixth of
# the run's CPU); `npm run test:coverage` (TORTIE_TEST_COVERAGE=1) runs the same with tap's
# coverage summary. TORTIE_TEST_JOBS sets how many test files run at once (default below).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if [ $# -eq 0 ]; then set -- dist/test; fi
tap_opts=(--jobs="${TORTIE_TEST_JOBS:-2}")
[ "${TORTIE_TEST_COVERAGE:-0}" = 1 ] || tap_opts+=(--disable-coverage)

leftovers() { { ip netns list 2>/dev/null | awk '{print "netns " $1}' | grep -E '^netns tt' || true; ls -d /sys/fs/bpf/tortie* 2>/dev/null | sed 's/^/pin /' || true; } | sort; }
before=$(leftovers)
mkdir -p test-results
log=test-results/tap.log
set +e
# Every test file runs inside one private network namespace (scripts/private-netns.sh): loopback
# traffic (etcd, agents' ports) stays off the host's network stack.
bash scripts/private-netns.sh node node_modules/tap/dist/esm/run.mjs "${tap_opts[@]}" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
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
# tap closes each file with "ok N - dist/test/<file>.js # time=<ms>ms" (or "not ok …").
slowest=$(sed -nE 's/^(not )?ok [0-9]+ - ([^ ]+\.js) .*# time=([0-9.]+)ms.*/\3 \2/p' "$log" | sort -rn | head -10 || true)
if [ -n "$slowest" ]; then
  echo "# ten slowest test files (TAP log: $log):"
  awk '{ printf "#   %7.1f s  %s\n", $1 / 1000, $2 }' <<<"$slowest"
fi
exit $rc
