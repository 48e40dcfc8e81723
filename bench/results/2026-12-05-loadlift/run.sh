#!/bin/bash
# usage: run.sh DAEMON FILE TAG   one bpfilterd (NativeAOT) in a fresh netns with a veth fw0, `nft -f FILE` through bfnft.
# Daemon CPU: utime+stime of the daemon from just before `nft -f` until 1 s after it returned. PERF=FILE: perf record it.
# NS_PREFIX (ll-) names the netns and pin dir, RUN_DIR (/tmp/loadlift) holds the run's files; HWM=1 adds the daemon's peak RSS (hwm_kb);
# BFNFT the bfnft to run. The line ends with the backend's lift time from the daemon's log.
# FREQ: perf record frequency (299).
set -u
D="$1"; F="$2"; T="$3"
BFNFT=${BFNFT:-/tmp/loadcost/base-src/patches/nftables/build/bfnft}
NS=${NS_PREFIX:-ll-}$T-$$
ip netns add $NS
ip netns exec $NS ip link add fw0 type veth peer name tx0
ip netns exec $NS ip link set fw0 up; ip netns exec $NS ip link set tx0 up; ip netns exec $NS ip link set lo up
W=${RUN_DIR:-/tmp/loadlift}/run-$T-$$; mkdir -p $W/state; PIN=/sys/fs/bpf/$NS
ip netns exec $NS env BPFILTERD_SLOW_BATCH_MS=0 $D --socket $W/sock --state-dir $W/state --pin-dir $PIN > $W/log 2>&1 &
DP=$!
for i in $(seq 100); do [ -S $W/sock ] && break; sleep 0.1; done
sleep 0.3
PID=$(pgrep -f -- "--socket $W/sock" | head -1)
PP=
if [ -n "${PERF:-}" ]; then perf record -F ${FREQ:-299} -g -p $PID -o $PERF > /dev/null 2>&1 & PP=$!; sleep 0.5; fi
C0=$(awk '{print ($14+$15)}' /proc/$PID/stat)
s=$(date +%s.%N)
ip netns exec $NS env BFNFT_SOCKET=$W/sock $BFNFT -f $F; rc=$?
e=$(date +%s.%N)
sleep 1
C1=$(awk '{print ($14+$15)}' /proc/$PID/stat)
H=; [ -n "${HWM:-}" ] && H="hwm_kb=$(awk '/VmHWM/ {print $2}' /proc/$PID/status) "
[ -n "$PP" ] && { kill -INT $PP; wait $PP; }
echo "$T rc=$rc wall=$(echo "$e - $s" | bc) daemon_cpu=$(echo "scale=2; ($C1 - $C0)/100" | bc)s load=$(cut -d' ' -f1 /proc/loadavg) ${H}state_bytes=$(du -b $W/state | tail -1 | cut -f1) $(grep -o 'batch committed in [0-9]* ms.*' $W/log | tail -1 | sed 's/, 1000[0-9]* message(s)//') $(grep -o 'lift [0-9]* ms' $W/log | tail -1)"
kill $PID; wait $DP 2>/dev/null
ip netns del $NS; rm -rf $PIN $W
