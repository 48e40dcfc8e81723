#!/usr/bin/env bash
# Start time and memory of bpfilterd: the NativeAOT executable (scripts/publish.sh) against
# `dotnet bpfilterd.dll` (Release build), side by side in one run, RUNS times each (alternating),
# medians printed as a table. Needs root: each daemon runs enforcing in a network namespace of its
# own (created and removed here), so nothing touches the host's traffic.
#   start:  from exec to the first accepted connect() on its socket
#   VmRSS:  /proc/PID/status after `bfnft -f` loaded a small ruleset (a set, 4 rules, 2 base chains)
# Usage: sudo bench/startup.sh [RUNS=7]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-7}
aot=${BFNT_DAEMON_BIN:-$root/out/publish/bpfilterd}
[ -x "$aot" ] || "$root/scripts/publish.sh" >&2
dotnet build "$root/Bpfilter.Daemon" -c Release -nologo -v:q >&2
dll=$root/Bpfilter.Daemon/bin/Release/net10.0/bpfilterd.dll
make -s -C "$root/patches/nftables"
exec /usr/bin/python3 - "$runs" "$aot" "$dll" "$root/patches/nftables/build/bfnft" <<'PY'
import os, socket, statistics, subprocess, sys, tempfile, time
runs, aot, dll, bfnft = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
RULESET = """table inet filter {
  set blocklist {
    type ipv4_addr; flags interval
    elements = { 198.18.66.0/24, 198.19.0.1 }
  }
  chain input {
    type filter hook input priority filter; policy accept;
    ip saddr @blocklist counter drop
    tcp dport { 22, 80, 443 } counter accept
    icmp type echo-request counter accept
    udp dport 5353 counter drop
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
  }
}
"""
def run(cmd, ns):
    d = tempfile.mkdtemp(prefix="bpfd-bench-")
    sock = os.path.join(d, "s.sock")
    t0 = time.monotonic()
    p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd, "--socket", sock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        return measure(p, sock, t0, cmd, ns)
    finally:
        if p.poll() is None: p.terminate()
        try: p.wait(30)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
        for f in os.listdir(d): os.unlink(os.path.join(d, f))
        os.rmdir(d)

def measure(p, sock, t0, cmd, ns):
    start = None
    while time.monotonic() - t0 < 30:
        if p.poll() is not None:
            raise SystemExit(f"{cmd} exited {p.returncode}: {p.stderr.read().decode()}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(sock)
            start = time.monotonic() - t0
            break
        except OSError:
            time.sleep(0.001)
    if start is None: raise SystemExit(f"{cmd} did not listen within 30 s")
    r = subprocess.run(["ip", "netns", "exec", ns, bfnft, "-f", "-"], input=RULESET.encode(),
                       env={**os.environ, "BFNFT_SOCKET": sock}, capture_output=True)
    if r.returncode != 0: raise SystemExit(f"bfnft -f failed: {r.stderr.decode()}")
    rss = next(int(l.split()[1]) for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS:"))
    return start * 1000, rss / 1024

modes = [("NativeAOT (out/publish/bpfilterd)", [aot]), ("dotnet bpfilterd.dll (Release)", ["dotnet", dll])]
res = {m: [] for m, _ in modes}
for i in range(runs):
    for m, cmd in modes:
        ns = f"bpfd-bench-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
            res[m].append(run(cmd, ns))
        finally:
            subprocess.run(["ip", "netns", "del", ns])
print(f"bpfilterd start and memory, medians of {runs} runs (load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
print("| daemon | start until the socket accepts (ms) | VmRSS after a small ruleset (MiB) |")
print("|---|---:|---:|")
for m, _ in modes:
    print(f"| {m} | {statistics.median(s for s, _ in res[m]):.0f} | {statistics.median(r for _, r in res[m]):.1f} |")
PY
