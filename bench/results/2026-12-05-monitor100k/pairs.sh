#!/bin/bash
# alternating pairs: main (base) vs monitor100k (new), NativeAOT, netdev ingress (XDP) same-shape rules
# usage: pairs.sh FILE N [MONITOR]
F=$1; N=$2
for i in $(seq $N); do
  MONITOR=${3:-} timeout 1200 ./run.sh /tmp/m100k/base-aot/bpfilterd $F base-$i
  MONITOR=${3:-} timeout 1200 ./run.sh /tmp/m100k/new-aot/bpfilterd $F new-$i
done
