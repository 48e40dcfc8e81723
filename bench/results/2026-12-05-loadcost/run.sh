#!/bin/bash
# usage: run.sh DAEMON FILE TAG   one bpfilterd (NativeAOT) in a fresh netns with a veth fw0, `nft -f FILE` through bfnft.
# Daemon CPU: utime+stime of the daemon from just before `nft -f` until 1 s after it returned. PERF=FILE: perf record it.
set -u
D="$1"; F="$2"; T="$3"
BFNFT=${BFNFT:-/tmp/loadcost/base-src/patches/nftables/build/bfnft}
. "$(dirname "$0")/../../netns-load.sh"
load_start $T lc $D
PP=
if [ -n "${PERF:-}" ]; then perf record -F 299 -g -p $PID -o $PERF > /dev/null 2>&1 & PP=$!; sleep 0.5; fi
load_file $F
sleep 1
C1=$(load_cpu)
[ -n "$PP" ] && { kill -INT $PP; wait $PP; }
load_report $T "" "state_bytes=$(du -b $W/state | tail -1 | cut -f1)"
load_stop
