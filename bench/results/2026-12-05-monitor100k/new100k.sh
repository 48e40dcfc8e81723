#!/bin/bash
# monitor100k's build only: 100,000 rules with and without an nft monitor listening, alternating
for i in 1 2; do
  MONITOR=1 timeout 900 ./run.sh /tmp/m100k/new-aot/bpfilterd netdev-100000.nft new-monitor-$i
  timeout 900 ./run.sh /tmp/m100k/new-aot/bpfilterd netdev-100000.nft new-nomonitor-$i
done
