#!/usr/bin/env bash
# Backend time of element-only batches: `nft add element` of 1 and of 1,000 addresses into a set of
# SIZE addresses that `ip saddr @s drop` reads in an inet input chain (two BPF programs, ipv4 and
# ipv6, each holding the set), then `nft delete element` of the same. The time is what bpfilterd logs
# (`committed elements only in X ms`: Prepare + Commit in the backend). Medians of RUNS rounds.
# Needs root; the daemon runs enforcing in a namespace of its own with temporary state and pin
# directories, all removed at the end.
# Usage: sudo bench/element-batch.sh [RUNS=9] [SIZE=100000]
#   BFNT_DAEMON_DLL=path/bpfilterd.dll measures another build (default: this tree's Debug build).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-9}
size=${2:-100000}
dll=${BFNT_DAEMON_DLL:-$root/Bpfilter.Daemon/bin/Debug/net10.0/bpfilterd.dll}
bfnft=${BFNT_BFNFT:-$root/patches/nftables/build/bfnft}
[ -f "$dll" ] || { echo "no daemon at $dll (dotnet build Bpfilter.Daemon)" >&2; exit 1; }
[ -x "$bfnft" ] || make -s -C "$root/patches/nftables"
exec /usr/bin/python3 - "$runs" "$size" "$dll" "$bfnft" <<'PY'
import os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
runs, size, dll, bfnft = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ns = f"bfbench-{os.getpid()}"
work = tempfile.mkdtemp(prefix="bpfd-bench-")
pins = f"/sys/fs/bpf/bfbench-{os.getpid()}"
sock = os.path.join(work, "s.sock")
log = open(os.path.join(work, "daemon.log"), "w+")

def addr(i): return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"

def nft(*args, stdin=None):
    r = subprocess.run(["ip", "netns", "exec", ns, "env", f"BFNFT_SOCKET={sock}", bfnft, *args],
                       input=stdin, capture_output=True, text=True, timeout=600)
    if r.returncode != 0: raise SystemExit(f"nft {' '.join(args)[:80]} failed: {r.stderr}")

def last_ms(before):
    with open(log.name) as f:
        f.seek(before)
        found = re.findall(r"committed elements only in ([0-9.]+) ms", f.read())
    if not found: raise SystemExit("the batch took the full path (no 'committed elements only' line)")
    return float(found[-1])

def batch(verb, first, count):
    before = os.path.getsize(log.name)
    elements = ", ".join(addr(first + i) for i in range(count))
    nft(verb, "element", "inet", "t", "s", "{ " + elements + " }")
    time.sleep(0.05)
    return last_ms(before)

subprocess.run(["ip", "netns", "add", ns], check=True)
daemon = None
try:
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
    daemon = subprocess.Popen(["ip", "netns", "exec", ns, "dotnet", dll, "--socket", sock, "--state-dir", work, "--pin-dir", pins],
                              stdout=log, stderr=log)
    t0 = time.monotonic()
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s: s.connect(sock)
            break
        except OSError:
            if daemon.poll() is not None or time.monotonic() - t0 > 60: raise SystemExit("the daemon did not start")
            time.sleep(0.1)
    elements = ",\n".join(addr(i) for i in range(size))
    nft("-f", "-", stdin=f"""table inet t {{
  set s {{ type ipv4_addr; size {4 * size}; elements = {{ {elements} }} }}
  chain in {{ type filter hook input priority 0; policy accept; ip saddr @s drop; }}
}}
""")
    rows = {}
    for r in range(runs):
        base = size + 10 + r * 2000
        for name, count in (("1 element", 1), ("1000 elements", 1000)):
            rows.setdefault(f"add {name}", []).append(batch("add", base, count))
            rows.setdefault(f"delete {name}", []).append(batch("delete", base, count))
    print(f"daemon: {dll}\nset of {size} addresses, {runs} rounds, median (min-max) ms of backend time")
    for k, v in rows.items():
        print(f"{k:>22}: {statistics.median(v):8.3f} ({min(v):.3f}-{max(v):.3f})")
finally:
    if daemon and daemon.poll() is None:
        daemon.terminate()
        try: daemon.wait(30)
        except subprocess.TimeoutExpired: daemon.kill(); daemon.wait()
    subprocess.run(["ip", "netns", "del", ns])
    shutil.rmtree(pins, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
PY
