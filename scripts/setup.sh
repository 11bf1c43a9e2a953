#!/usr/bin/env bash
# One-time and idempotent set-up for a Debian 12 host, run as root by the README's commands:
# apt packages (only the missing ones), bpffs, npm ci (only when the lockfile changed), build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tortie: this must run as root (BPF, network namespaces and tc need CAP_SYS_ADMIN/CAP_NET_ADMIN)." >&2
  echo "        re-run with sudo, e.g.: sudo npm test" >&2
  exit 1
fi

APT_PACKAGES=(clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config cmake ninja-build g++ make
  bpftool iproute2 iputils-ping netcat-openbsd socat openssl iptables ipset conntrack tcpdump ethtool
  iperf3 wrk sockperf nginx-light etcd-server etcd-client vagrant
  python3-scapy nftables podman containernetworking-plugins runc busybox-static bird2 frr)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx-light and etcd-server start system services on install; tortie starts its own copies.
  systemctl disable --now nginx etcd >/dev/null 2>&1 || true
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
