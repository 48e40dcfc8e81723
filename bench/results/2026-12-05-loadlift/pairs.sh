#!/bin/bash
# alternating: main (base), loadlift (new), the kernel's nft -f; N rounds at each size
# usage: pairs.sh N SIZE...   (builds in /tmp/loadlift/{base,new}-aot, files /tmp/loadlift/netdev-SIZE.nft from ../2026-12-05-monitor100k/gen.py)
N=$1; shift
for F in "$@"; do
  for i in $(seq $N); do
    timeout 900 ./run.sh /tmp/loadlift/base-aot/bpfilterd /tmp/loadlift/netdev-$F.nft base-$F-$i
    timeout 900 ./run.sh /tmp/loadlift/new-aot/bpfilterd /tmp/loadlift/netdev-$F.nft new-$F-$i
    timeout 900 ./kernel.sh /tmp/loadlift/netdev-$F.nft kernel-$F-$i
  done
done
