# Sourced by one-load benchmark scripts (results/*/run.sh): one bpfilterd in a fresh netns with a veth fw0, one
# `nft -f FILE` through bfnft timed, the daemon's CPU measured, everything removed after. Needs BFNFT (the bfnft to run).
#   load_start TAG PREFIX DAEMON...  netns PREFIX-TAG-PID, work dir /tmp/PREFIX/run-TAG-PID; sets NS W PIN PID DP
#   load_file FILE                 sets rc WALL C0 (the daemon's utime+stime, in ticks, just before `nft -f`)
#   load_report TAG BEFORE AFTER   the result line: BEFORE and AFTER stand before and after `load=`
#   load_stop
load_start() {
  local tag="$1" prefix="$2"; shift 2
  NS=$prefix-$tag-$$
  ip netns add $NS
  ip netns exec $NS ip link add fw0 type veth peer name tx0
  ip netns exec $NS ip link set fw0 up; ip netns exec $NS ip link set tx0 up; ip netns exec $NS ip link set lo up
  W=/tmp/$prefix/run-$tag-$$; mkdir -p $W/state; PIN=/sys/fs/bpf/$prefix-$tag-$$
  ip netns exec $NS env BPFILTERD_SLOW_BATCH_MS=0 "$@" --socket $W/sock --state-dir $W/state --pin-dir $PIN > $W/log 2>&1 &
  DP=$!
  for i in $(seq 100); do [ -S $W/sock ] && break; sleep 0.1; done
  sleep 0.3
  PID=$(pgrep -f -- "--socket $W/sock" | head -1)
}

load_cpu() { awk '{print ($14+$15)}' /proc/$PID/stat; }

load_file() {
  C0=$(load_cpu)
  local s e
  s=$(date +%s.%N)
  ip netns exec $NS env BFNFT_SOCKET=$W/sock $BFNFT -f "$1"; rc=$?
  e=$(date +%s.%N)
  WALL=$(echo "$e - $s" | bc)
}

# call after the settling time the script wants, with C1=$(load_cpu)
load_report() {
  echo "$1 rc=$rc wall=$WALL daemon_cpu=$(echo "scale=2; ($C1 - $C0)/100" | bc)s $2 load=$(cut -d' ' -f1 /proc/loadavg) $3 $(grep -o 'batch committed in [0-9]* ms.*' $W/log | tail -1 | sed 's/, 1000[0-9]* message(s)//')"
}

load_stop() {
  kill $PID; wait $DP 2>/dev/null
  ip netns del $NS; rm -rf $PIN $W
}
