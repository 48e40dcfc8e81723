#!/bin/bash
# usage: kern.sh NFTFILE -- the same nft -f against the kernel's nf_tables in a throwaway netns
ns=bigset3-k-$$
ip netns add $ns; ip -n $ns link add fw0 type veth peer name tx0
echo "$(cat /proc/loadavg) kernel"
ip netns exec $ns /usr/bin/time -f "kernel nft: wall %e s, user %U s, sys %S s" nft -f $1
ip netns del $ns
