#!/bin/bash
# usage: run.sh DAEMON FILE TAG   MONITOR=1: an `nft monitor` (bfnft) listens during the load
set -u
D="$1"; F="$2"; T="$3"
BFNFT=${BFNFT:-/work/wt-monitor100k/patches/nftables/build/bfnft}
. "$(dirname "$0")/../../netns-load.sh"
load_start $T m100k $D
MP=
if [ -n "${MONITOR:-}" ]; then
  ip netns exec $NS env BFNFT_SOCKET=$W/sock $BFNFT monitor > $W/monitor.out 2>&1 &
  MP=$!
  for i in $(seq 50); do grep -q "event groups" $W/log && break; sleep 0.1; done
fi
load_file $F
[ -n "$MP" ] && sleep 2
C1=$(load_cpu)
MON=""
[ -n "$MP" ] && { kill $MP; wait $MP 2>/dev/null; MON="monitor_add_rules=$(grep -c '^add rule' $W/monitor.out)"; }
load_report $T "$MON" ""
load_stop
