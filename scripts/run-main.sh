#!/usr/bin/env bash
# The main job: bpfilterd enforcing in a network namespace of its own. Loads examples/ruleset.nft
# through bfnft (the distribution's nft, pointed at the daemon), sends traffic from a peer namespace
# over a veth pair that hits accept and drop rules, then prints `nft list ruleset` with the live
# counters and `bpfilterd explain` (attach points, lifted rules, BPF instructions).
# Run as root on Debian 12. Namespaces, veth and daemon are removed on exit, also on failure.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run-main: run as root" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

"$ROOT/scripts/install-deps.sh"
dotnet build Bpfilter.Daemon -c Release -nologo -v q -clp:ErrorsOnly
DAEMON="$ROOT/Bpfilter.Daemon/bin/Release/net10.0/bpfilterd.dll"
BFNFT="$ROOT/patches/nftables/build/bfnft"

ID=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
FW="bfmain-fw-$ID"
PEER="bfmain-peer-$ID"
WORK=$(mktemp -d /tmp/bfmain.XXXXXX)
SOCK="$WORK/bpfilterd.sock"
DPID=

cleanup() {
  set +e
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID"
    for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null
  fi
  ip netns del "$FW" 2>/dev/null
  ip netns del "$PEER" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# fw (198.18.0.1, device bfm0, the name examples/ruleset.nft uses) <-veth-> peer (198.18.0.2)
ip netns add "$FW"
ip netns add "$PEER"
ip link add bfm0 netns "$FW" type veth peer name bfp0 netns "$PEER"
ip -n "$FW" addr add 198.18.0.1/24 dev bfm0
ip -n "$PEER" addr add 198.18.0.2/24 dev bfp0
# extra peer sources: one in the blocklist set (input hook), one the netdev ingress (XDP) rule drops
ip -n "$PEER" addr add 198.18.66.5/32 dev bfp0
ip -n "$PEER" addr add 198.18.99.7/32 dev bfp0
for ns in "$FW" "$PEER"; do ip -n "$ns" link set lo up; done
ip -n "$FW" link set bfm0 up
ip -n "$PEER" link set bfp0 up
ip -n "$FW" route add 198.18.64.0/18 dev bfm0   # answers to the extra sources go back over the veth

# The daemon owns its process: $DPID is `ip netns exec`, which execs dotnet.
ip netns exec "$FW" dotnet "$DAEMON" --socket "$SOCK" >"$WORK/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do [ -S "$SOCK" ] && break; kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "run-main: bpfilterd did not start:" >&2; cat "$WORK/daemon.log" >&2; exit 1; }
export BFNFT_SOCKET="$SOCK"
fwnft() { ip netns exec "$FW" "$BFNFT" "$@"; }

echo "== loading examples/ruleset.nft through bfnft"
fwnft -f examples/ruleset.nft

# A TCP SYN to a closed port comes back as a reset when the firewall delivers it, and gets no
# answer when a rule drops it.
tcp_probe() { # SRC PORT EXPECT
  ip -n "$PEER" route replace 198.18.0.1/32 dev bfp0 src "$1"
  local got
  if ip netns exec "$PEER" timeout 3 bash -c "exec 3<>/dev/tcp/198.18.0.1/$2" 2>/dev/null; then got=delivered
  else case $? in 124) got=dropped ;; *) got=delivered ;; esac
  fi
  printf '  tcp %-12s -> 198.18.0.1:%-5s %-9s (expected %s)\n' "$1" "$2" "$got" "$3"
  [ "$got" = "$3" ] || MISMATCH=1
}
MISMATCH=0
echo "== traffic from the peer namespace"
tcp_probe 198.18.0.2 22 delivered     # tcp dport { 22, 80, 443 } counter accept
tcp_probe 198.18.0.2 80 delivered
tcp_probe 198.18.0.2 8080 delivered   # no rule: policy accept
tcp_probe 198.18.66.5 22 dropped      # ip saddr @blocklist counter drop (input hook, BPF_NETFILTER)
tcp_probe 198.18.99.7 22 dropped      # ip saddr 198.18.99.0/24 counter drop (netdev ingress, XDP)
ip -n "$PEER" route replace 198.18.0.1/32 dev bfp0 src 198.18.0.2
for _ in 1 2 3; do ip netns exec "$PEER" bash -c 'echo probe >/dev/udp/198.18.0.1/5353'; done  # udp dport 5353 counter drop
echo "  udp 198.18.0.2 -> 198.18.0.1:5353 x3 (dropped by rule)"
if command -v ping >/dev/null; then
  ip netns exec "$PEER" ping -c 3 -i 0.2 -W 1 198.18.0.1 >/dev/null && echo "  ping x3 answered (icmp type echo-request counter accept)" || { echo "  ping not answered"; MISMATCH=1; }
fi

echo
echo "== bfnft list ruleset (counters read from the BPF maps)"
fwnft list ruleset
echo
echo "== bpfilterd explain"
ip netns exec "$FW" dotnet "$DAEMON" explain --socket "$SOCK"

echo "== stopping bpfilterd"
kill -TERM "$DPID"; wait "$DPID" || true; DPID=
echo "== daemon log"
cat "$WORK/daemon.log"
[ "$MISMATCH" = 0 ] || { echo "run-main: some traffic did not get the expected verdict" >&2; exit 1; }
echo "run-main: ok"
