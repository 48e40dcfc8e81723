#!/bin/bash
# usage: run.sh DAEMON FILE TAG   MONITOR=1: an `nft monitor` (bfnft) listens during the load
set -u
D="$1"; F="$2"; T="$3"
BFNFT=/work/wt-monitor100k/patches/nftables/build/bfnft
NS=m100k-$T-$$
ip netns add $NS
ip netns exec $NS ip link add fw0 type veth peer name tx0
ip netns exec $NS ip link set fw0 up; ip netns exec $NS ip link set tx0 up; ip netns exec $NS ip link set lo up
W=/tmp/m100k/run-$T-$$; mkdir -p $W/state; PIN=/sys/fs/bpf/m100k-$T-$$
ip netns exec $NS env BPFILTERD_SLOW_BATCH_MS=0 $D --socket $W/sock --state-dir $W/state --pin-dir $PIN > $W/log 2>&1 &
DP=$!
for i in $(seq 100); do [ -S $W/sock ] && break; sleep 0.1; done
sleep 0.3
PID=$(pgrep -f -- "--socket $W/sock" | head -1)
MP=
if [ -n "${MONITOR:-}" ]; then
  ip netns exec $NS env BFNFT_SOCKET=$W/sock $BFNFT monitor > $W/monitor.out 2>&1 &
  MP=$!
  for i in $(seq 50); do grep -q "event groups" $W/log && break; sleep 0.1; done
fi
C0=$(awk '{print ($14+$15)}' /proc/$PID/stat)
s=$(date +%s.%N)
ip netns exec $NS env BFNFT_SOCKET=$W/sock $BFNFT -f $F; rc=$?
e=$(date +%s.%N)
[ -n "$MP" ] && sleep 2
C1=$(awk '{print ($14+$15)}' /proc/$PID/stat)
MON=""
[ -n "$MP" ] && { kill $MP; wait $MP 2>/dev/null; MON="monitor_add_rules=$(grep -c '^add rule' $W/monitor.out)"; }
echo "$T rc=$rc wall=$(echo "$e - $s" | bc) daemon_cpu=$(echo "scale=2; ($C1 - $C0)/100" | bc)s $MON load=$(cut -d' ' -f1 /proc/loadavg) $(grep -o 'batch committed in [0-9]* ms.*' $W/log | tail -1 | sed 's/, 1000[0-9]* message(s)//')"
kill $PID; wait $DP 2>/dev/null
ip netns del $NS; rm -rf $PIN $W
