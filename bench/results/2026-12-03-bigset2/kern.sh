#!/bin/bash
ns=bigset2-k-$$
ip netns add $ns; ip -n $ns link add fw0 type veth peer name tx0
ip netns exec $ns /usr/bin/time -f "kernel nft: wall %e s, user %U s, sys %S s" nft -f $1
ip netns del $ns
