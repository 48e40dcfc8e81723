#!/bin/bash
# usage: ab.sh BEFORE-DIR AFTER-DIR PAIRS FILE
for i in $(seq $3); do for d in $1 $2; do echo "== $d run $i"; ./run.sh $d $4 2>&1 | grep -v "restart:\|no saved\|listening\|enforcing"; done; done
