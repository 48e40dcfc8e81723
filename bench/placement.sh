#!/usr/bin/env bash
# Where bpfilterd places each ruleset of integration/corpus/rulesets/: loads it through bfnft into a
# fresh daemon (default placement) in a throwaway namespace and prints, per ruleset, base chains and
# rules in BPF and in the kernel's nf_tables, as the daemon logs them. Devices the ruleset names
# (device, iif, oif) are created as veth pairs. Run as root after a build (scripts/test.sh or dotnet build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dll="$root/Bpfilter.Daemon/bin/Debug/net10.0/bpfilterd.dll"
bfnft="$root/patches/nftables/build/bfnft"
[ -f "$dll" ] && [ -x "$bfnft" ] || { echo "build first (dotnet build; make -C patches/nftables)"; exit 1; }
printf '| ruleset | base chains in BPF (rules) | base chains in the kernel (rules) |\n|---|---|---|\n'
for f in "$root"/integration/corpus/rulesets/*.nft; do
  name=$(basename "$f" .nft)
  ns="bft-place-$$-$name"; dir=$(mktemp -d); sock="$dir/bpfilterd.sock"
  ip netns add "$ns"
  trap 'kill $pid 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"' EXIT
  ip netns exec "$ns" ip link set lo up
  for dev in $(grep -oE '(device|iif|oif) "[^"]*"' "$f" | cut -d'"' -f2 | sort -u); do
    ip netns exec "$ns" ip link show "$dev" >/dev/null 2>&1 && continue
    ip netns exec "$ns" ip link add "$dev" type veth peer name "${dev:0:10}-p"; ip netns exec "$ns" ip link set "$dev" up
  done
  ip netns exec "$ns" dotnet "$dll" --socket "$sock" >"$dir/log" 2>&1 & pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  awk '/^ruleset <<EOF/{f=1;next} /^EOF/{f=0} f' "$f" >"$dir/ruleset.nft"
  if BFNFT_SOCKET="$sock" ip netns exec "$ns" "$bfnft" -f "$dir/ruleset.nft" 2>"$dir/err"; then
    line=$(grep -o '[0-9]* base chain(s) in BPF ([0-9]* rules), [0-9]* in the kernel.s nf_tables ([0-9]* rules)' "$dir/log" | tail -1)
    bpf=$(sed -E 's/^([0-9]+) base chain\(s\) in BPF \(([0-9]+) rules\).*/\1 (\2)/' <<<"$line")
    kern=$(sed -E 's/.*, ([0-9]+) in the kernel.s nf_tables \(([0-9]+) rules\)/\1 (\2)/' <<<"$line")
    printf '| %s | %s | %s |\n' "$name" "$bpf" "$kern"
  else
    printf '| %s | refused: %s | |\n' "$name" "$(head -1 "$dir/err")"
  fi
  kill $pid; wait $pid 2>/dev/null || true
  ip netns del "$ns"; rm -rf "$dir"; trap - EXIT
done
