#!/bin/bash
# strace -c of nft through bfnft (syscalls libbfnft makes) for one nft -f into a fresh bpfilterd
set -u
dll=$1; file=$2
ns=bigset2-st-$$
w=$(mktemp -d /tmp/bigset2/st-XXXX)
ip netns add $ns
ip -n $ns link add fw0 type veth peer name tx0
ip -n $ns link set fw0 up; ip -n $ns link set tx0 up
ip netns exec $ns dotnet $dll --socket $w/s.sock --state-dir $w/state --pin-dir /sys/fs/bpf/$ns > $w/log 2>&1 &
p=$!
for i in $(seq 1800); do [ -S $w/s.sock ] && break; sleep 0.1; done
ip netns exec $ns env BFNFT_SOCKET=$w/s.sock strace -f -c -e trace=write,read,sendmsg,recvmsg,sendto,recvfrom,connect /work/wt-bigset2/patches/nftables/build/bfnft -f $file
echo rc=$?
kill -INT $p; sleep 3; kill $p 2>/dev/null; wait $p 2>/dev/null
ip netns del $ns; rm -rf /sys/fs/bpf/$ns
