#!/usr/bin/env bash
# Soak: random nf_tables transactions through bfnft into an enforcing bpfilterd while UDP traffic flows,
# each checked against the same batch in a kernel nf_tables namespace (listings with handles) and
# against a counter model (counters move by exactly the datagrams sent, never back; dropped ports get
# nothing), with kill -9/SIGTERM restarts at random points. See bench/Bpfilter.Soak.
#   sudo scripts/soak.sh [--minutes N | --seconds N] [--seed S] [--no-restarts] [--kernel-placed]
# Builds bpfilterd, bfnft and the soak program first. Ends with a summary line; exit 1 on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
make -s -C patches/nftables
dotnet build Bpfilter.Daemon -nologo -v:q >/dev/null
dotnet build bench/Bpfilter.Soak -nologo -v:q >/dev/null
exec dotnet bench/Bpfilter.Soak/bin/Debug/net10.0/bpfilter-soak.dll "$@"
