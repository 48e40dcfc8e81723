#!/usr/bin/env bash
# Installs what is needed, builds everything, runs every test project, and ends with the
# suite's totals as a plain line "N passed, N failed". Run as root (namespace and BPF tests are real).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh" || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
out="$root/out/test"; rm -rf "$out"; mkdir -p "$out"
if ! dotnet build Bpfilter.Nft.sln -nologo -v:q 2>&1 | tee "$out/build.log" | grep -E ' error |Build succeeded|FAILED' ; then :; fi
if grep -q ' error ' "$out/build.log"; then echo "build failed"; echo "0 passed, 1 failed"; exit 1; fi

passed=0; failed=0; skipped=0; status=0
# One test project at a time: the namespace and BPF tests are real and the machine is small.
for proj in $(find tests integration -name '*.Tests.csproj' | sort); do
  name=$(basename "$proj" .csproj)
  echo "=== $name"
  timeout 1800 dotnet test "$proj" --no-build -nologo --logger "trx;LogFileName=$name.trx" --results-directory "$out" \
    --logger "console;verbosity=normal" >"$out/$name.log" 2>&1
  rc=$?
  # Names of failed and skipped tests, then the counts from the TRX report.
  grep -E '^\s+(Failed|Skipped) ' "$out/$name.log" | head -50
  counters=$(grep -o '<Counters [^>]*>' "$out/$name.trx" 2>/dev/null | head -1)
  if [ -n "$counters" ]; then
    get() { sed -E "s/.* $1=\"([0-9]+)\".*/\1/" <<<"$counters"; }
    total=$(get total); p=$(get passed); f=$(( $(get failed) + $(get error) + $(get timeout) + $(get aborted) ))
    s=$(( total - p - f )); [ $s -lt 0 ] && s=0
    echo "$name: $p passed, $f failed, $s skipped"
  else
    # No report: the run crashed or timed out; count the project as one failure.
    tail -20 "$out/$name.log"; p=0; f=1; s=0
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ $rc -ne 0 ] && status=1
done
[ $failed -gt 0 ] && status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
