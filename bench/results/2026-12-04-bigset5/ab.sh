#!/bin/bash
# usage: ab.sh BEFORE-DIR AFTER-DIR PAIRS FILE -- alternated loads, before first; LISTDIR=DIR also saves each
# load's `list ruleset` as DIR/NAME-RUN.list (NAME: the daemon directory's base name)
for i in $(seq $3); do
  for d in $1 $2; do
    echo "== $d run $i"
    LIST=${LISTDIR:+$LISTDIR/$(basename $d)-$i.list} $(dirname $0)/run.sh $d $4 2>&1
  done
done
