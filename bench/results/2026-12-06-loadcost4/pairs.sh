#!/bin/bash
# alternating: main 552b8d2 (base), loadcost4 43398d0 (new: the state file's rule messages encoded on the other core while the
# backend prepares), loadcost4 e1d421a (new2: the same, kept in shared large arrays), and each with a 128 MiB gen0 budget
# (ARMg0: DOTNET_GCgen0size=8000000, hex; with a 0x prefix the NativeAOT runtime ignores it).
# usage: [ARMS="base new2 new2g0"] pairs.sh N SHAPE-SIZE...   (../2026-12-05-loadlift/run.sh; NativeAOT builds in /tmp/lc4/{base,new}-aot,
# files /tmp/lc4/files/SHAPE-SIZE.nft from bench/suite.py's nft_file('bpf-xdp', SHAPE, SIZE): netdev ingress on fw0, XDP)
N=$1; shift
R=$(dirname "$0")/../2026-12-05-loadlift/run.sh
export HWM=1 NS_PREFIX=lc4- RUN_DIR=/tmp/lc4 BFNFT=${BFNFT:-/work/wt-loadcost4/patches/nftables/build/bfnft}
declare -A D=([base]=/tmp/lc4/base-aot/bpfilterd [new]=/tmp/lc4/new-aot/bpfilterd
  [newg0]="env DOTNET_GCgen0size=8000000 /tmp/lc4/new-aot/bpfilterd" [baseg0]="env DOTNET_GCgen0size=8000000 /tmp/lc4/base-aot/bpfilterd"
  [new2]=/tmp/lc4/new2-aot/bpfilterd [new2g0]="env DOTNET_GCgen0size=8000000 /tmp/lc4/new2-aot/bpfilterd")
for F in "$@"; do
  for i in $(seq $N); do
    for a in ${ARMS:-base new newg0}; do timeout 900 $R "${D[$a]}" /tmp/lc4/files/$F.nft $a-$F-$i; done
  done
done
