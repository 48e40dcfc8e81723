#!/bin/bash
# alternating: main dbf68f0 (base) and load100k (new: AttrParser's attribute index, a batch's alike expressions shared).
# usage: [ARMS="base new"] pairs.sh N SHAPE-SIZE...   (../2026-12-05-loadlift/run.sh; NativeAOT builds in /tmp/l100k/{base,new}-aot,
# files /tmp/l100k/files/SHAPE-SIZE.nft: copies of /tmp/lc4/files/, bench/suite.py's nft_file('bpf-xdp', SHAPE, SIZE): netdev ingress on fw0, XDP)
N=$1; shift
R=$(dirname "$0")/../2026-12-05-loadlift/run.sh
export HWM=1 NS_PREFIX=l1k- RUN_DIR=/tmp/l100k BFNFT=${BFNFT:-/tmp/l100k/base-src/patches/nftables/build/bfnft}
declare -A D=([base]=/tmp/l100k/base-aot/bpfilterd [new]=/tmp/l100k/new-aot/bpfilterd)
for F in "$@"; do
  for i in $(seq $N); do
    for a in ${ARMS:-base new}; do timeout 900 $R "${D[$a]}" /tmp/l100k/files/$F.nft $a-$F-$i; done
  done
done
