#!/bin/bash
R=/work/main/bench/results/2026-12-05-loadlift/run.sh
export HWM=1 NS_PREFIX=q6- RUN_DIR=/tmp/q6 BFNFT=/work/main/patches/nftables/build/bfnft
for i in 1 2 3; do
 for f in same-10000 classbench-10000; do
  /tmp/q6/k.sh /tmp/lc4/files/$f.nft kernel-$f-$i
  timeout 600 $R /tmp/q6/aot/bpfilterd /tmp/lc4/files/$f.nft bpf-$f-$i
 done
done
for i in 1 2; do
  /tmp/q6/k.sh /tmp/lc4/files/same-100000.nft kernel-same-100000-$i
  timeout 900 $R /tmp/q6/aot/bpfilterd /tmp/lc4/files/same-100000.nft bpf-same-100000-$i
done
