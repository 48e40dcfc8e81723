#!/usr/bin/env bash
# Huge batches, side by side: `nft -f` of one chain of N rules and of one set of N elements, loaded
# into the kernel's nf_tables and, through bfnft, into bpfilterd (enforcing and --no-enforce), each in
# a fresh namespace. Prints load time, `list ruleset` time and the daemon's peak RSS (VmHWM) per run.
# Run as root after `dotnet build Bpfilter.Daemon -c Release` (or Debug) and `make -C patches/nftables`.
#   sudo bench/hugebatch.sh [--timeout SECONDS] [CASE...]     CASE: rules:N or elements:N
# Default cases: rules:100000 elements:100000 elements:1000000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
timeout=1800
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --timeout) timeout=$2; shift 2 ;;
    rules:*|elements:*) cases+=("$1"); shift ;;
    *) echo "usage: $0 [--timeout SECONDS] [rules:N|elements:N ...]" >&2; exit 2 ;;
  esac
done
[ ${#cases[@]} -gt 0 ] || cases=(rules:100000 elements:100000 elements:1000000)
dll=$(ls -t "$root"/Bpfilter.Daemon/bin/{Release,Debug}/net10.0/bpfilterd.dll 2>/dev/null | head -1 || true)
bfnft="$root/patches/nftables/build/bfnft"
[ -n "$dll" ] && [ -x "$bfnft" ] || { echo "build first (dotnet build Bpfilter.Daemon; make -C patches/nftables)" >&2; exit 1; }
work=$(mktemp -d /tmp/bft-huge-XXXXXX)
# a copy of the daemon's build output: a rebuild during a long run must not change what runs
cp -r "$(dirname "$dll")" "$work/daemon"; dll="$work/daemon/$(basename "$dll")"
ns=""; pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# one chain at input with N different rules (none matches the namespace's traffic: there is none)
gen_rules() {
  awk -v n="$1" 'BEGIN {
    print "table ip huge {"; print "  chain c {"; print "    type filter hook input priority 0; policy accept;"
    for (i = 0; i < n; i++) printf "    ip saddr 10.%d.%d.%d udp dport %d counter drop\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256, 1024 + i % 60000
    print "  }"; print "}" }'
}
# one ipv4_addr set of N elements, matched by one rule at input
gen_elements() {
  awk -v n="$1" 'BEGIN {
    print "table ip huge {"; print "  set s {"; print "    type ipv4_addr"
    printf "    elements = { "
    for (i = 0; i < n; i++) printf "%s10.%d.%d.%d", (i ? ", " : ""), int(i / 65536) % 256, int(i / 256) % 256, i % 256
    print " }"; print "  }"
    print "  chain c {"; print "    type filter hook input priority 0; policy accept;"
    print "    ip saddr @s counter drop"; print "  }"; print "}" }'
}

# runs `CMD...` under the timeout; prints seconds, or "timeout"/"failed (exit N)"
timed() {
  local start end rc=0
  start=$(date +%s.%N)
  timeout "$timeout" "$@" >"$work/out" 2>"$work/err" || rc=$?
  end=$(date +%s.%N)
  if [ $rc -eq 124 ]; then echo "timeout (${timeout}s)"
  elif [ $rc -ne 0 ]; then echo "failed (exit $rc: $(head -c 200 "$work/err" | tr '\n' ' '))"
  else awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f s", e - s }'; fi
}

printf '| batch | side | nft -f | nft list ruleset | daemon peak RSS | placement |\n|---|---|---:|---:|---:|---|\n'
for c in "${cases[@]}"; do
  kind=${c%%:*}; n=${c#*:}
  file="$work/$kind-$n.nft"
  "gen_$kind" "$n" >"$file"
  for side in kernel enforcing no-enforce; do
    ns="bft-huge-$$-$side"; ip netns add "$ns"; ip netns exec "$ns" ip link set lo up
    nft=(ip netns exec "$ns" nft)
    rss="" placement=""
    if [ "$side" != kernel ]; then
      sock="$work/bpfilterd.sock"; args=(--socket "$sock" --state-dir "$work/state-$side")
      [ "$side" = no-enforce ] && args+=(--no-enforce)
      ip netns exec "$ns" env DOTNET_gcServer=0 dotnet "$dll" "${args[@]}" >"$work/log-$side" 2>&1 & pid=$!
      for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
      nft=(ip netns exec "$ns" env BFNFT_SOCKET="$sock" "$bfnft")
    fi
    load=$(timed "${nft[@]}" -f "$file")
    list=$(timed "${nft[@]}" list ruleset)
    if [ -n "$pid" ]; then
      rss=$(awk '/VmHWM/ { printf "%d MiB", $2 / 1024 }' "/proc/$pid/status")
      placement=$(grep -o '[0-9]* base chain(s) in BPF ([0-9]* rules), [0-9]* in the kernel.s nf_tables ([0-9]* rules)' "$work/log-$side" | tail -1 || true)
      kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
      rm -rf "$work/state-$side"
    fi
    ip netns del "$ns"; ns=""
    printf '| %s %s | %s | %s | %s | %s | %s |\n' "$n" "$kind" "$side" "$load" "$list" "${rss:--}" "${placement:--}"
  done
  rm -f "$file"
done
