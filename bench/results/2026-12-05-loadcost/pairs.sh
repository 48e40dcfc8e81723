#!/bin/bash
# alternating: main (base), loadcost (new), the kernel's nft -f; N rounds at each size
# usage: [NEW=DIR] pairs.sh N SIZE...   (NEW: the new build's publish directory)
N=$1; shift
for F in "$@"; do
  for i in $(seq $N); do
    timeout 900 ./run.sh /tmp/loadcost/base-aot/bpfilterd /tmp/loadcost/netdev-$F.nft base-$F-$i
    timeout 900 ./run.sh ${NEW:-/tmp/loadcost/new-aot}/bpfilterd /tmp/loadcost/netdev-$F.nft new-$F-$i
    timeout 900 ./kernel.sh /tmp/loadcost/netdev-$F.nft kernel-$F-$i
  done
done
