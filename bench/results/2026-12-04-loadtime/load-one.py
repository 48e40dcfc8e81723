#!/usr/bin/env python3
# One `nft -f` of the suite's ruleset into a fresh bpfilterd (as root; ../2026-12-04-nftload2/load-one.py plus the state file sizes):
#   load-one.py BIN-or-DLL SIDE SHAPE N [ENV=V ...]   (PERF=FILE: perf record -g the daemon during the load)
# prints start-up and nft -f wall time, the daemon's CPU time and peak RSS, and its prepared/batch-committed log lines
import sys, os, time, subprocess, tempfile, shutil, socket
BENCH = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, BENCH)
import suite
binp, side, shape, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = sys.argv[5:]
fam, text = suite.nft_file(side, shape, n)
f = tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False); f.write(text); f.close()
topo = suite.Topology(f"q{os.getpid()%1000}")
work = tempfile.mkdtemp(prefix="nl2-")
sock = work + "/s.sock"
pins = f"/sys/fs/bpf/nl2-{os.getpid()}"
cmd = ["env", "DOTNET_gcServer=0"] + env + (["dotnet", binp] if binp.endswith(".dll") else [binp])
log = open(work + "/log", "w+")
t0 = time.monotonic()
p = subprocess.Popen(topo.exec(topo.fw) + cmd + ["--socket", sock, "--state-dir", work + "/state", "--pin-dir", pins, "--no-bpf-stats"], stdout=log, stderr=log)
try:
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s: s.connect(sock)
            break
        except OSError:
            if p.poll() is not None: raise SystemExit(open(log.name).read())
            time.sleep(0.05)
    start = time.monotonic() - t0
    nft = topo.exec(topo.fw) + ["env", f"BFNFT_SOCKET={sock}", os.environ.get("BFNFT", os.path.join(BENCH, "../patches/nftables/build/bfnft"))]
    perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(p.pid), "-o", os.environ["PERF"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) if os.environ.get("PERF") else None
    if perf: time.sleep(0.5)
    t1 = time.monotonic(); r = subprocess.run(nft + ["-f", f.name], capture_output=True, text=True); wall = time.monotonic() - t1
    if perf:
        import signal as sg; perf.send_signal(sg.SIGINT); perf.wait()
    st = open(f"/proc/{p.pid}/stat").read().split(")")[1].split()
    cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
    rss = [l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmHWM")][0].split()[1]
    lines = [l.strip() for l in open(log.name) if "batch committed" in l or "prepared" in l]
    print(f"{os.path.basename(binp)} {side} {shape} {n} {' '.join(env)}: start {start:.2f} s, nft -f {wall:.2f} s rc {r.returncode} {r.stderr[:200]}, daemon cpu {cpu:.2f} s, hwm {int(rss)//1024} MiB, load {open('/proc/loadavg').read().split()[0]}")
    for l in lines: print("   ", l[:400])
    import glob; print("    state files:", [(x, os.path.getsize(x)) for x in glob.glob(work + "/state/*")])
finally:
    p.terminate(); p.wait()
    topo.close(); shutil.rmtree(pins, ignore_errors=True); shutil.rmtree(work, ignore_errors=True); os.unlink(f.name)
