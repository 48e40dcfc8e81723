#!/bin/bash
# alternating: main 85c8a63 (base), loadcost3 c5d7dfc (new: the lifter's per-rule allocations), and the same new build with
# the background GC off (newnc: DOTNET_gcConcurrent=0, what <ConcurrentGarbageCollection>false would bake in)
# usage: [ARMS="base new"] pairs.sh N SIZE...   (../2026-12-05-loadlift/run.sh; builds in /tmp/loadcost3/{base,new}-aot,
# files /tmp/loadlift/netdev-SIZE.nft from ../2026-12-05-monitor100k/gen.py)
N=$1; shift
R=../2026-12-05-loadlift/run.sh
export NS_PREFIX=lc3- RUN_DIR=/tmp/loadcost3 HWM=1
declare -A D=([base]=/tmp/loadcost3/base-aot/bpfilterd [new]=/tmp/loadcost3/new-aot/bpfilterd
  [newnc]="env DOTNET_gcConcurrent=0 /tmp/loadcost3/new-aot/bpfilterd")
for F in "$@"; do
  for i in $(seq $N); do
    for a in ${ARMS:-base new newnc}; do timeout 900 $R "${D[$a]}" /tmp/loadlift/netdev-$F.nft $a-$F-$i; done
  done
done
