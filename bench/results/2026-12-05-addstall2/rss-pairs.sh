#!/bin/sh
# Daemon RSS at 10,000 ClassBench rules and the 16 adds (the 15th the stall), base (main) and branch alternated:
#   rss-pairs.sh FROM TO   (as root; BFNFT=path of bfnft; daemons built to /tmp/as2-base and /tmp/as2-branch;
#   pairs 1-4 were run base first, 5-8 branch first)
set -e
cd "$(dirname "$0")"
for i in $(seq "$1" "$2"); do
  if [ "$i" -le 4 ]; then order="base branch"; else order="branch base"; fi
  for side in $order; do
    python3 ../2026-12-04-addrule3/add-profile.py /tmp/as2-$side/bpfilterd.dll bpf-xdp classbench 10000 16 > rss-$side-$i.txt
  done
done
