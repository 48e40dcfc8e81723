#!/bin/bash
# usage: run.sh DAEMON-DIR NFTFILE -- one nft -f into a fresh bpfilterd (own netns), timestamps around nft
set -u
dir=$1; file=$2; bfnft=/work/main/patches/nftables/build/bfnft
ns=bigset6-$$
w=$(mktemp -d /tmp/bigset6/runs/run-XXXX)
ip netns add $ns
ip -n $ns link add fw0 type veth peer name tx0
ip -n $ns link set fw0 up; ip -n $ns link set tx0 up
ip netns exec $ns env DOTNET_gcServer=0 BPFILTERD_SLOW_BATCH_MS=0 ${DAEMON_ENV:-} dotnet $dir/bpfilterd.dll --socket $w/s.sock --state-dir $w/state --pin-dir /sys/fs/bpf/$ns > $w/log 2>&1 &
p=$!
for i in $(seq 1800); do [ -S $w/s.sock ] && break; sleep 0.1; done
sleep 1
cpu() { awk '{print $14+$15}' /proc/$p/stat; }
echo "$(cat /proc/loadavg) $dir"
c0=$(cpu)
if [ -n "${PERF:-}" ]; then perf record -F 499 -g -p $p -o $PERF 2>/dev/null & pp=$!; sleep 1; fi
echo "nft start $(date -u +%H:%M:%S.%3N)"
ip netns exec $ns env BFNFT_SOCKET=$w/s.sock /usr/bin/time -f "nft: wall %e s, user %U s, sys %S s" $bfnft -f $file; rc=$?
echo "nft end   $(date -u +%H:%M:%S.%3N)"
echo "daemon cpu $(( $(cpu) - c0 )) ticks (1/100 s) rc=$rc"
if [ -n "${PERF:-}" ]; then kill -INT $pp; wait $pp; fi
grep -v "^\s*$" $w/log | tail -8
ls -l $w/state | tail -n +2
if [ -n "${LIST:-}" ]; then ip netns exec $ns env BFNFT_SOCKET=$w/s.sock $bfnft list ruleset > $LIST; fi
kill -INT $p; sleep 3; kill $p 2>/dev/null; wait $p 2>/dev/null
ip netns del $ns; rm -rf /sys/fs/bpf/$ns $w
