#!/bin/bash
# alternating: trial12 (base), liftalloc (new); N rounds at each size (no kernel rows: only the daemon's CPU compares the builds)
# usage: pairs.sh N SIZE...   (run.sh of ../2026-12-05-loadlift; builds in /tmp/liftalloc/{base,new}-aot, files /tmp/loadlift/netdev-SIZE.nft from ../2026-12-05-monitor100k/gen.py)
N=$1; shift
for F in "$@"; do
  for i in $(seq $N); do
    timeout 900 ../2026-12-05-loadlift/run.sh /tmp/liftalloc/base-aot/bpfilterd /tmp/loadlift/netdev-$F.nft base-$F-$i
    timeout 900 ../2026-12-05-loadlift/run.sh /tmp/liftalloc/new-aot/bpfilterd /tmp/loadlift/netdev-$F.nft new-$F-$i
  done
done
