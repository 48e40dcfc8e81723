#!/bin/bash
# kernel nft -f FILE in a fresh netns with fw0
F=$1; T=$2; NS=q6k-$T-$$
ip netns add $NS; ip netns exec $NS ip link add fw0 type veth peer name tx0; ip netns exec $NS ip link set fw0 up
s=$(date +%s.%N); ip netns exec $NS nft -f $F; rc=$?; e=$(date +%s.%N)
echo "$T rc=$rc wall=$(echo "$e - $s" | bc) load=$(cut -d' ' -f1 /proc/loadavg)"
ip netns del $NS
