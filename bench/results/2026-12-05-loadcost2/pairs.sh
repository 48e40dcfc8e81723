#!/bin/bash
# alternating: main 1be7182 (base), loadcost2 (new); N rounds at each size (no kernel rows: only the daemon's CPU compares the builds)
# usage: pairs.sh N SIZE...   (../2026-12-05-loadlift/run.sh; builds in /tmp/loadcost2/{base,new}-aot, files /tmp/loadlift/netdev-SIZE.nft from ../2026-12-05-monitor100k/gen.py)
N=$1; shift
for F in "$@"; do
  for i in $(seq $N); do
    timeout 900 env NS_PREFIX=lc2- RUN_DIR=/tmp/loadcost2 HWM=1 ../2026-12-05-loadlift/run.sh /tmp/loadcost2/base-aot/bpfilterd /tmp/loadlift/netdev-$F.nft base-$F-$i
    timeout 900 env NS_PREFIX=lc2- RUN_DIR=/tmp/loadcost2 HWM=1 ../2026-12-05-loadlift/run.sh /tmp/loadcost2/new-aot/bpfilterd /tmp/loadlift/netdev-$F.nft new-$F-$i
  done
done
