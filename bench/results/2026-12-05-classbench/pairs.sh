#!/bin/bash
# alternating after/before: nft -f CPU (load-one.py) and nft add rule CPU (add-profile.py), XDP, ClassBench-style 10,000
AFTER=$1; BEFORE=$2; OUT=$3
R=/work/wt-classbench/bench/results
export BFNFT=/work/wt-classbench/patches/nftables/build/bfnft
for i in 1 2; do
  for side in after before; do
    d=$AFTER; [ $side = before ] && d=$BEFORE
    echo "$(python3 $R/2026-12-04-loadtime/load-one.py $d/bpfilterd.dll bpf-xdp classbench 10000 BPFILTERD_SLOW_BATCH_MS=0 2>&1 | sed "s/^/$side /")" >> $OUT
    echo "$(python3 $R/2026-12-04-addrule3/add-profile.py $d/bpfilterd.dll bpf-xdp classbench 10000 6 2>&1 | sed "s/^/$side /")" >> $OUT
  done
done
