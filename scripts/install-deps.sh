#!/usr/bin/env bash
# Installs everything bpfilter-nft needs on Debian 12 (bookworm) as root. Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "install-deps: run as root" >&2; exit 1; }

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
  updated=
fi
need=(nftables iproute2 gcc make libc6-dev pkg-config util-linux procps iptables strace systemd clang zlib1g-dev man-db gnuplot-nox)
# strace: nft request capture test; systemd: systemd-analyze verify of packaging/systemd;
# clang, zlib1g-dev: the NativeAOT link of bpfilterd (scripts/publish.sh); man-db: man -l of the .deb's man pages;
# iptables (iptables-legacy) and gnuplot-nox: bench/suite.py's iptables side and its PNG plot
bpo=(libbpf1 libbpf-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# libbpf >= 1.4 comes from bookworm-backports.
libbpf_ok=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null | grep -qE '^1:1\.([4-9]|[1-9][0-9])' && echo yes || echo no)
if [ ${#missing[@]} -gt 0 ] || [ "$libbpf_ok" = no ]; then
  apt-get update -q
  [ ${#missing[@]} -gt 0 ] && apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ "$libbpf_ok" = no ] && apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo[@]}"
fi
command -v dotnet >/dev/null || { echo "install-deps: the .NET SDK (dotnet) is required" >&2; exit 1; }
# The C interposer that points an unmodified nft at bpfilterd.
make -s -C "$(dirname "$0")/../patches/nftables"
