#!/usr/bin/env python3
# `nft add rule` into the suite's N-rule chain in a fresh bpfilterd (as root):
#   add-profile.py BIN-or-DLL SIDE SHAPE N ADDS [ENV=V ...]   (PERF=FILE: perf record -g the daemon during the adds;
#   OTHER_KEYS_AFTER=K: adds after the Kth are of other keys, see ../2026-12-05-addaot/add-mixed.py)
# loads the ruleset with `nft -f`, then times ADDS single `nft add rule` (wall), and prints the daemon's CPU time
# over the adds and each add's `prepared`/`batch committed` log lines
import sys, os, time, subprocess, tempfile, shutil, socket, statistics
BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, BENCH)
import suite
binp, side, shape, n, adds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
env = sys.argv[6:]
fam, text = suite.nft_file(side, shape, n)
f = tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False); f.write(text); f.close()
topo = suite.Topology(f"a{os.getpid()%1000}")
work = tempfile.mkdtemp(prefix="ar3-")
sock = work + "/s.sock"
pins = f"/sys/fs/bpf/ar3-{os.getpid()}"
cmd = ["env", "DOTNET_gcServer=0", "BPFILTERD_SLOW_BATCH_MS=0"] + env + (["dotnet", binp] if binp.endswith(".dll") else [binp])
log = open(work + "/log", "w+")
def rss(pid):
    # resident and peak resident set of the daemon, MB (issue 12: what a compiled program keeps, ../2026-12-05-addstall2)
    st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return int(st["VmRSS"].split()[0]) / 1024, int(st["VmHWM"].split()[0]) / 1024
def cpu(pid):
    st = open(f"/proc/{pid}/stat").read().split(")")[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
p = subprocess.Popen(topo.exec(topo.fw) + cmd + ["--socket", sock, "--state-dir", work + "/state", "--pin-dir", pins, "--no-bpf-stats"], stdout=log, stderr=log)
try:
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s: s.connect(sock)
            break
        except OSError:
            if p.poll() is not None: raise SystemExit(open(log.name).read())
            time.sleep(0.05)
    nft = topo.exec(topo.fw) + ["env", f"BFNFT_SOCKET={sock}", os.environ.get("BFNFT", os.path.join(BENCH, "../patches/nftables/build/bfnft"))]
    r = subprocess.run(nft + ["-f", f.name], capture_output=True, text=True)
    if r.returncode: raise SystemExit(r.stderr)
    log.flush(); skip = sum(1 for _ in open(log.name)); rss_loaded = rss(p.pid)[0]
    perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(p.pid), "-o", os.environ["PERF"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if os.environ.get("PERF") else None
    if perf: time.sleep(0.5)
    c0 = cpu(p.pid); walls = []
    for i in range(adds):
        # the suite's own add (d)
        args = ["add", "rule", fam, "bench", "c", "ip", "saddr", f"10.254.{i // 250}.{i % 250 + 1}", "udp", "dport", "7", "counter", "drop"]
        # OTHER_KEYS_AFTER=K (../2026-12-05-addaot/add-mixed.py): from the K+1th add, rules of other keys
        if i >= int(os.environ.get("OTHER_KEYS_AFTER", adds)):
            args = ["add", "rule", fam, "bench", "c"] + (["ip", "daddr", f"10.253.0.{i}"] if i % 2 else []) + ["tcp", "dport", str(1000 + i), "counter", "drop"]
        t1 = time.monotonic(); r = subprocess.run(nft + args, capture_output=True, text=True); walls.append((time.monotonic() - t1) * 1000)
        if r.returncode: raise SystemExit(r.stderr)
    c1 = cpu(p.pid); rss_added, peak = rss(p.pid)
    if perf:
        import signal as sg; perf.send_signal(sg.SIGINT); perf.wait()
    lines = [l.strip() for i, l in enumerate(open(log.name)) if i >= skip and ("batch committed" in l or "prepared" in l)]
    print(f"{os.path.basename(binp)} {side} {shape} {n}: {adds} adds, wall median {statistics.median(walls):.0f} ms ({min(walls):.0f}-{max(walls):.0f}), daemon cpu per add {(c1-c0)*1000/adds:.0f} ms, load {open('/proc/loadavg').read().split()[0]}")
    print(f"daemon rss after load {rss_loaded:.1f} MB, after the adds {rss_added:.1f} MB, peak {peak:.1f} MB")
    for l in lines: print("   ", l[:500])
finally:
    p.terminate(); p.wait()
    topo.close(); shutil.rmtree(pins, ignore_errors=True); shutil.rmtree(work, ignore_errors=True); os.unlink(f.name)
