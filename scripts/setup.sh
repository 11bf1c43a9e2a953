#!/usr/bin/env bash
# One-time and idempotent set-up for a Debian 12 host, run as root by the README's commands:
#   bash scripts/setup.sh [main|test|bench] [--packages]     (default: main)
# installs the Debian packages that command needs (only the missing ones), mounts bpffs, runs
# `npm ci` (only when the lockfile changed) and builds. --packages prints the package list and
# changes nothing.
#
# It never starts, stops or reconfigures the host's services: packages installed here are not
# allowed to start theirs (policy-rc.d for the duration of apt-get, unless the host has its own),
# and tests and benchmarks start private copies (etcd, nginx, bird, …) inside their namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=${1:-main}
case "$purpose" in
  main) cmd="npm start" ;;
  test) cmd="npm test" ;;
  bench) cmd="npm run bench" ;;
  *) echo "setup: unknown purpose \"$purpose\" (expected main, test or bench)" >&2; exit 2 ;;
esac

# (package lists below; --packages is handled after them)
check_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "tortie: this must run as root (BPF, network namespaces and tc need CAP_SYS_ADMIN/CAP_NET_ADMIN)." >&2
    echo "        re-run with sudo, e.g.: sudo $cmd" >&2
    exit 1
  fi
}

# The main job (build, doctor, the lab): the toolchain and the kernel tools the lab drives.
MAIN_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config cmake ninja-build g++ make
  bpftool iproute2 iputils-ping netcat-openbsd tcpdump)
# `npm test`: the real peers and clients the tests run against.
TEST_PACKAGES=(socat curl openssl iptables ipset conntrack ethtool etcd-server etcd-client vagrant
  python3-scapy nftables podman containernetworking-plugins runc busybox-static bird2 frr
  systemd)  # systemd-analyze verify for the packaged unit; installing it starts nothing
# `npm run bench`: load generators and the iptables/nftables baseline.
# (etcd: the control-plane group measures the agent on a private etcd too.)
BENCH_PACKAGES=(iperf3 wrk sockperf nginx-light nftables iptables ipset socat etcd-server etcd-client openssl)

APT_PACKAGES=("${MAIN_PACKAGES[@]}")
[ "$purpose" = test ] && APT_PACKAGES+=("${TEST_PACKAGES[@]}")
[ "$purpose" = bench ] && APT_PACKAGES+=("${BENCH_PACKAGES[@]}")

if [ "${2:-}" = --packages ]; then
  printf '%s\n' "${APT_PACKAGES[@]}" | sort -u
  exit 0
fi
check_root

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup ($purpose): installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's invoke-rc.d asks policy-rc.d before starting a service; 101 = "not allowed". Only
  # ours for this apt-get run, and only when the host has no policy of its own.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by tortie scripts/setup.sh during apt-get; removed afterwards\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$(trap -p EXIT)" ]; then rm -f "$policy"; trap - EXIT; fi
fi

if ! mountpoint -q /sys/fs/bpf; then
  mount -t bpf bpf /sys/fs/bpf
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.package-lock.json
fi

node scripts/build.js
