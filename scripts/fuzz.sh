#!/usr/bin/env bash
# Coverage-guided fuzzing of the netlink/nf_tables decoder and the transaction engine with AFL++ and
# SharpFuzz. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (default 600 s, targets: decoder engine)
# Targets run side by side, SECONDS each. Prints executions and crashes per target; every crash input
# is copied to fuzz/regressions/TARGET/ (replayed by tests/Bpfilter.Fuzz.Tests). Needs afl++ (Debian
# package) and the dotnet tool SharpFuzz.CommandLine 2.3.0; installs both when missing. Run as root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-600}; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(decoder engine)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="$PATH:$HOME/.dotnet/tools"

command -v afl-fuzz >/dev/null || { apt-get update -qq && apt-get install -y -qq afl++ >/dev/null; }
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null

out="$root/out/fuzz"; bin="$out/bin"
rm -rf "$bin"; mkdir -p "$bin"
dotnet build fuzz/Bpfilter.Fuzz/Bpfilter.Fuzz.csproj -nologo -v:q -c Release -o "$bin" >"$out/build.log" 2>&1 \
  || { cat "$out/build.log"; exit 1; }
# Seeds: every engine seed; decoder messages up to 2 KiB (large dumps only slow AFL down).
rm -rf "$out/seeds"; dotnet "$bin/bpfilter-fuzz.dll" seeds tests/Nft.Bytecode.Tests/Transcripts "$out/seeds" >/dev/null
find "$out/seeds/decoder" -type f -size +2k -delete
for t in "${targets[@]}"; do
  # Kept crash inputs seed the next campaign too, so a fix is checked under mutation.
  [ -d "fuzz/regressions/$t" ] && cp fuzz/regressions/"$t"/* "$out/seeds/$t/" 2>/dev/null || true
done

# Instrument the code under test, after the seeds are written (instrumented code only runs under
# afl-fuzz) and in a copy: the normal build output is never touched.
for dll in Nft.Netlink.dll Nft.Bytecode.dll bpfilterd.dll; do sharpfuzz "$bin/$dll" >/dev/null; done

export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1
pids=()
for t in "${targets[@]}"; do
  rm -rf "$out/findings-$t"
  afl-fuzz -i "$out/seeds/$t" -o "$out/findings-$t" -t 10000 -m none -V "$seconds" \
    -- dotnet "$bin/bpfilter-fuzz.dll" afl "$t" >"$out/afl-$t.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!targets[@]}"; do wait "${pids[$i]}" || { echo "afl-fuzz ${targets[$i]} failed:"; tail -20 "$out/afl-${targets[$i]}.log"; status=1; }; done

total_crashes=0
for t in "${targets[@]}"; do
  stats="$out/findings-$t/default/fuzzer_stats"
  [ -f "$stats" ] || { echo "$t: no fuzzer_stats"; status=1; continue; }
  get() { sed -nE "s/^$1 *: *(.*)/\1/p" "$stats"; }
  crashes=0
  mkdir -p "fuzz/regressions/$t"
  for c in "$out/findings-$t"/default/crashes/id:*; do
    [ -f "$c" ] || continue
    crashes=$((crashes + 1))
    cp "$c" "fuzz/regressions/$t/afl-$(sha1sum "$c" | cut -c1-12)"
  done
  total_crashes=$((total_crashes + crashes))
  echo "$t: $(get execs_done) executions in $(get run_time) s ($(get execs_per_sec)/s), $(get corpus_count) corpus entries, edges $(get edges_found)/$(get total_edges), crashes: $crashes, hangs: $(get saved_hangs)"
done
[ $total_crashes -gt 0 ] && { echo "crash inputs copied to fuzz/regressions/ (replay: dotnet $bin/bpfilter-fuzz.dll replay TARGET fuzz/regressions/TARGET)"; status=1; }
exit $status
