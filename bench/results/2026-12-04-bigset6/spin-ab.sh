#!/bin/bash
for i in 1 2 3; do
  echo "== default $i"; ./run.sh /tmp/base-8585e7e big.nft 2>&1 | grep -v "restart:\|no saved\|listening\|enforcing"
  echo "== spin0 $i"; DAEMON_ENV="DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0" ./run.sh /tmp/base-8585e7e big.nft 2>&1 | grep -v "restart:\|no saved\|listening\|enforcing"
done
