#!/bin/bash
# usage: run.sh DLL NFTFILE  -- one nft -f into a fresh bpfilterd (own netns), CPU split: nft process, daemon, wall
set -u
dll=$1; file=$2
ns=bigset2-prof-$$
w=$(mktemp -d /tmp/bigset2/run-XXXX)
ip netns add $ns
ip -n $ns link add fw0 type veth peer name tx0
ip -n $ns link set fw0 up; ip -n $ns link set tx0 up
ip netns exec $ns env DOTNET_gcServer=0 dotnet $dll --socket $w/s.sock --state-dir $w/state --pin-dir /sys/fs/bpf/$ns > $w/log 2>&1 &
p=$!
for i in $(seq 1800); do [ -S $w/s.sock ] && break; sleep 0.1; done
dp=$p
cpu() { awk '{print $14+$15}' /proc/$dp/stat; }
c0=$(cpu)
ip netns exec $ns env BFNFT_SOCKET=$w/s.sock /usr/bin/time -f "nft: wall %e s, user %U s, sys %S s" /work/wt-bigset2/patches/nftables/build/bfnft -f $file; rc=$?
echo "daemon cpu $(( $(cpu) - c0 )) ticks (1/100 s)"
echo "rc=$rc"
grep -i "prepared\|commit\|state" $w/log | tail -5
ls -la $w/state
kill -INT $p; sleep 3; kill $p 2>/dev/null; wait $p 2>/dev/null
ip netns del $ns; rm -rf /sys/fs/bpf/$ns
echo "work: $w"
