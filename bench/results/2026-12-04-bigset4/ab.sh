#!/bin/bash
# usage: ab.sh BEFORE-DIR AFTER-DIR PAIRS FILE -- alternated loads, before first
for i in $(seq $3); do
  for d in $1 $2; do echo "== $d run $i"; /tmp/bigset4/run.sh $d $4 2>&1 | grep -v "^-rw"; done
done
