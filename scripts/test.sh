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
# Runs one test project; LABEL names its report (a project can run twice), extra VAR=VALUE set its environment.
run_project() {
  local proj=$1 label=$2; shift 2
  echo "=== $label"
  env "$@" timeout 1800 dotnet test "$proj" --no-build -nologo --logger "trx;LogFileName=$label.trx" --results-directory "$out" \
    --logger "console;verbosity=normal" >"$out/$label.log" 2>&1
  local rc=$?
  # Names of failed and skipped tests, then the counts from the TRX report.
  grep -E '^\s+(Failed|Skipped) ' "$out/$label.log" | head -50
  local counters p f s total
  counters=$(grep -o '<Counters [^>]*>' "$out/$label.trx" 2>/dev/null | head -1)
  if [ -n "$counters" ]; then
    get() { sed -E "s/.* $1=\"([0-9]+)\".*/\1/" <<<"$counters"; }
    total=$(get total); p=$(get passed); f=$(( $(get failed) + $(get error) + $(get timeout) + $(get aborted) ))
    s=$(( total - p - f )); [ $s -lt 0 ] && s=0
    echo "$label: $p passed, $f failed, $s skipped"
  else
    # No report: the run crashed or timed out; count the project as one failure.
    tail -20 "$out/$label.log"; p=0; f=1; s=0
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ $rc -ne 0 ] && status=1
}

# The NativeAOT daemon, published once: the package test reuses it and the integration suite runs
# against it a second time below (what ships is the AOT binary, not `dotnet bpfilterd.dll`).
echo "=== publish (NativeAOT)"
aot_bin=""
if "$root/scripts/publish.sh" "$root/out/publish" >"$out/publish.log" 2>&1; then
  aot_bin="$root/out/publish/bpfilterd"
else
  tail -30 "$out/publish.log"; echo "publish: failed"; failed=$((failed + 1)); status=1
fi

# One test project at a time: the namespace and BPF tests are real and the machine is small.
for proj in $(find tests integration -name '*.Tests.csproj' | sort); do
  run_project "$proj" "$(basename "$proj" .csproj)"
done
if [ -n "$aot_bin" ]; then
  run_project integration/Bpfilter.Integration.Tests/Bpfilter.Integration.Tests.csproj Bpfilter.Integration.Tests.aot BFNT_DAEMON_BIN="$aot_bin"
fi
[ $failed -gt 0 ] && status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
