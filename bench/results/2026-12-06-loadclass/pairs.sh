#!/bin/bash
# alternating: main (base), loadclass (new); N rounds per file
# usage: pairs.sh N FILE...   (run.sh: ../2026-12-05-loadlift/run.sh, which takes FREQ for perf)
#   (NativeAOT builds of `scripts/publish.sh` in /tmp/lcl/{base,new}-aot, files copied from suite.py's nft_file)
N=$1; shift
for F in "$@"; do
  for i in $(seq $N); do
    timeout 900 ../2026-12-05-loadlift/run.sh ${BASE:-/tmp/lcl/base-aot/bpfilterd} $F base-$(basename $F .nft)-$i
    timeout 900 ../2026-12-05-loadlift/run.sh ${NEW:-/tmp/lcl/new-aot/bpfilterd} $F new-$(basename $F .nft)-$i
  done
done
