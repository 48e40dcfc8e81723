#!/usr/bin/env bash
# Publishes bpfilterd as one NativeAOT executable (linux-x64: no .NET runtime needed where it runs)
# and builds the nft interposer.
#   scripts/publish.sh [OUT]   -> OUT/bpfilterd (default out/publish), patches/nftables/build/{libbfnft.so,bfnft}
# Fails on any AOT or trimming warning (IL2xxx/IL3xxx): the daemon's code path uses no reflection.
# Needs clang (or gcc) and zlib1g-dev for the native link: scripts/install-deps.sh installs them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/out/publish}
mkdir -p "$out"
out=$(cd "$out" && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cd "$root"
if ! dotnet publish Bpfilter.Daemon -c Release -r linux-x64 -p:PublishAot=true -o "$out" -nologo -v:m >"$log" 2>&1; then
  cat "$log" >&2
  echo "publish: dotnet publish failed" >&2
  exit 1
fi
if grep -E 'warning IL[0-9]{4}' "$log" | sort -u | grep . >&2; then
  echo "publish: AOT/trimming warnings above" >&2
  exit 1
fi
[ -x "$out/bpfilterd" ] || { echo "publish: $out/bpfilterd was not produced" >&2; exit 1; }
make -s -C "$root/patches/nftables"
echo "$out/bpfilterd"
