#!/usr/bin/python3
"""The benchmark suite of issue 12, one command, every side in one run:

    sudo bench/suite.py [--quick] [--n 1,100,...] [--measure a,b,c,d,e,f] [--sides ...] [--shapes ...]
                        [--seconds S] [--samples N] [--timeout S] [--big-set] [--out DIR] [--daemon DIR] [--jit]

Sides: nft-input (kernel nf_tables, inet input chain), nft-ingress (kernel, netdev ingress chain),
iptables (iptables-legacy, filter INPUT), bpf-input (bpfilterd, the inet input chain: BPF_NETFILTER) and
bpf-xdp (bpfilterd, the netdev ingress chain: XDP). Shapes: same (N same-shape rules), classbench
(N ClassBench-style 5-tuple ACL rules, bench/classbench.py) and set (one rule, a set of N addresses).
Every ruleset ends in the one rule the probe packet matches (`... counter drop`), so a probe runs
through all the others first. Measurements, per side, shape and N:
  a  BPF_PROG_TEST_RUN ns per packet of the program bpfilterd attached (id from its explain socket)
  b  packets per second over a veth pair, the sender (bench/sender.c, AF_PACKET, PACKET_QDISC_BYPASS,
     sendmmsg) in another namespace; the bare XDP_DROP floor (and, with bpf-input, a bare NF_DROP at ipv4
     input: that side's ceiling) is measured in the same run, at its start and end; with a, a bare `return
     accept` per hook is test-run the same way (the hook's and the harness's own cost)
  c  nft -f load time (iptables-legacy-restore for iptables)
  d  nft add rule latency into the N-rule chain (iptables-legacy -A)
  e  nft add element latency into the N-element set
  f  bpfilterd resident memory after the load (VmRSS, VmHWM)
Writes DIR/results.md, DIR/results.json and DIR/rate.png (gnuplot). Needs root, bpfilterd as it ships (the
NativeAOT executable of scripts/publish.sh; --jit: the Release build run as `dotnet bpfilterd.dll`),
bench/Bpfilter.Bench and bfnft (the script builds them, brought up to date each run).
"""
import argparse, datetime, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classbench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIDES = ["nft-input", "nft-ingress", "iptables", "bpf-input", "bpf-xdp"]
SHAPES = ["same", "classbench", "set"]
PROBE_SRC, PROBE_DST, PROBE_DPORT = "198.18.0.1", "198.18.0.2", 9
TX_MAC, FW_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
BIG_SET = 1_048_576


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N = 1, 100, 1000 and 2 s of traffic")
    p.add_argument("--n", help="comma-separated rule/element counts (default 1,100,1000,10000,100000)")
    p.add_argument("--measure", default="a,b,c,d,e,f")
    p.add_argument("--sides", default=",".join(SIDES))
    p.add_argument("--shapes", default=",".join(SHAPES))
    p.add_argument("--seconds", type=float, help="traffic per rate measurement (default 3, --quick 2)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds any one command may take")
    p.add_argument("--samples", type=int, default=5, help="nft add rule / add element commands per cell, of which the median is reported (default 5)")
    p.add_argument("--big-set", action="store_true", help=f"also nft -f a set of {BIG_SET} addresses, kernel and bpfilterd")
    p.add_argument("--out", help="output directory (default bench/results/DATE)")
    p.add_argument("--daemon-logs", action="store_true", help="keep each bpfilterd's log in the output directory (logs/CELL.log), "
                   "every batch's phases logged (BPFILTERD_SLOW_BATCH_MS=0)")
    p.add_argument("--jit", action="store_true", help="run the tree's Release build as `dotnet bpfilterd.dll` (JIT) instead of the "
                   "NativeAOT executable that scripts/publish.sh and the .deb ship")
    p.add_argument("--baseline", metavar="DIR", help="also run every bpfilterd cell with the bpfilterd build in DIR (a NativeAOT publish "
                   "directory holding the executable bpfilterd, or a JIT build holding bpfilterd.dll), "
                   "rows marked 'baseline': before and after side by side in one run")
    p.add_argument("--daemon", metavar="DIR", help="run this bpfilterd build (a directory holding bpfilterd.dll, e.g. a copy of an "
                   "earlier Release build, for before/after runs) instead of Bpfilter.Daemon/bin/Release/net10.0")
    p.add_argument("--render", metavar="DIR", help="only write DIR/results.md and DIR/rate.png again from DIR/results.json")
    a = p.parse_args()
    a.ns = [int(x) for x in a.n.split(",")] if a.n else ([1, 100, 1000] if a.quick else [1, 100, 1000, 10000, 100000])
    a.measure = set(a.measure.split(","))
    a.sides = [s for s in a.sides.split(",") if s]
    a.shapes = [s for s in a.shapes.split(",") if s]
    a.seconds = a.seconds or (2.0 if a.quick else 3.0)
    a.daemon_dir = os.path.abspath(a.daemon) if a.daemon else None
    if not 1 <= a.samples <= 254: p.error("--samples: 1 to 254 (each adds one address of a /24)")
    for s in a.sides:
        if s not in SIDES: p.error(f"unknown side {s}")
    for s in a.shapes:
        if s not in SHAPES: p.error(f"unknown shape {s}")
    return a


def run(cmd, timeout, stdin=None, check=True):
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)[:120]} failed ({r.returncode}): {r.stderr.strip()[:300]}")
    return r


def timed(cmd, timeout, stdin=None):
    t = time.monotonic()
    run(cmd, timeout, stdin)
    return time.monotonic() - t


# ---------------------------------------------------------------------------------------------- rulesets

def addr(i): return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


PROBE_RULE = f"ip saddr {PROBE_SRC} udp dport {PROBE_DPORT} counter drop"


def nft_rules(shape, n):
    """The rule lines (nft syntax) of a chain: n rules, the last the probe's."""
    if shape == "same":
        return [f"ip saddr {addr(i)} udp dport {1024 + i % 60000} counter drop" for i in range(n - 1)] + [PROBE_RULE]
    if shape == "classbench":
        return [r.nft() for r in classbench.generate(n - 1, seed=12, avoid=(PROBE_SRC, PROBE_DST, 17, PROBE_DPORT))] + [PROBE_RULE]
    return [f"ip saddr @s udp dport {PROBE_DPORT} counter drop"]


def set_elements(n): return [addr(i) for i in range(n - 1)] + [PROBE_SRC]


def nft_file(side, shape, n):
    family, hook = ("netdev", 'type filter hook ingress device "fw0" priority 0') if side.endswith(("ingress", "xdp")) \
        else ("inet", "type filter hook input priority 0")
    out = [f"table {family} bench {{"]
    if shape == "set":
        out.append("  set s {\n    type ipv4_addr\n    elements = { " + ",\n      ".join(set_elements(n)) + " }\n  }")
    out.append(f"  chain c {{\n    {hook}; policy accept;")
    out += ["    " + r for r in nft_rules(shape, n)]
    out.append("  }\n}\n")
    return family, "\n".join(out)


def iptables_file(shape, n):
    if shape == "same":
        rules = [f"-s {addr(i)}/32 -p udp --dport {1024 + i % 60000} -j DROP" for i in range(n - 1)]
    else:
        rules = [r.iptables() for r in classbench.generate(n - 1, seed=12, avoid=(PROBE_SRC, PROBE_DST, 17, PROBE_DPORT))]
    rules.append(f"-s {PROBE_SRC}/32 -p udp --dport {PROBE_DPORT} -j DROP")
    return "*filter\n:INPUT ACCEPT [0:0]\n" + "".join(f"-A INPUT {r}\n" for r in rules) + "COMMIT\n"


def probe_frame():
    """Ethernet/IPv4/UDP probe from the sender to the firewall's address, 60 bytes, checksums set."""
    def csum(b):
        s = sum((b[i] << 8) + (b[i + 1] if i + 1 < len(b) else 0) for i in range(0, len(b), 2))
        while s >> 16: s = (s & 0xffff) + (s >> 16)
        return (~s) & 0xffff
    src, dst = bytes(map(int, PROBE_SRC.split("."))), bytes(map(int, PROBE_DST.split(".")))
    payload = bytes(18)
    udp = bytearray((40000).to_bytes(2, "big") + PROBE_DPORT.to_bytes(2, "big") + (8 + len(payload)).to_bytes(2, "big") + bytes(2) + payload)
    c = csum(src + dst + bytes([0, 17]) + len(udp).to_bytes(2, "big") + udp) or 0xffff
    udp[6:8] = c.to_bytes(2, "big")
    ip = bytearray(bytes([0x45, 0]) + (20 + len(udp)).to_bytes(2, "big") + bytes([0, 1, 0x40, 0, 64, 17, 0, 0]) + src + dst)
    ip[10:12] = csum(ip).to_bytes(2, "big")
    eth = bytes.fromhex(FW_MAC.replace(":", "")) + bytes.fromhex(TX_MAC.replace(":", "")) + b"\x08\x00"
    return (eth + ip + udp).hex()


# ---------------------------------------------------------------------------------------------- topology

class Topology:
    """Two namespaces joined by a veth pair: tx (tx0, 198.18.0.1) and fw (fw0, 198.18.0.2)."""

    def __init__(self, tag):
        self.tx, self.fw = f"bfsuite-{os.getpid()}-{tag}-tx", f"bfsuite-{os.getpid()}-{tag}-fw"
        for ns in (self.tx, self.fw):
            run(["ip", "netns", "add", ns], 30)
        sh = lambda ns, *c: run(["ip", "-n", ns, *c], 30)
        run(["ip", "link", "add", "tx0", "netns", self.tx, "address", TX_MAC, "type", "veth",
             "peer", "name", "fw0", "netns", self.fw, "address", FW_MAC], 30)
        for ns, dev, ip, peer_ip, peer_mac in ((self.tx, "tx0", PROBE_SRC, PROBE_DST, FW_MAC), (self.fw, "fw0", PROBE_DST, PROBE_SRC, TX_MAC)):
            sh(ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh(ns, "link", "set", dev, "up")
            sh(ns, "link", "set", "lo", "up")
            sh(ns, "neigh", "replace", peer_ip, "lladdr", peer_mac, "dev", dev, "nud", "permanent")

    def exec(self, ns): return ["ip", "netns", "exec", ns]

    def tx_packets(self):
        return int(run(self.exec(self.tx) + ["cat", "/sys/class/net/tx0/statistics/tx_packets"], 30).stdout)

    def close(self):
        for ns in (self.tx, self.fw):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def daemon_dir_command(d):
    """How to start the bpfilterd build in directory d: a JIT build holds bpfilterd.dll (run by `dotnet`; its
    apphost `bpfilterd` beside it would do the same), a NativeAOT publish only the executable bpfilterd."""
    if os.path.exists(os.path.join(d, "bpfilterd.dll")): return ["dotnet", os.path.join(d, "bpfilterd.dll")]
    if os.access(os.path.join(d, "bpfilterd"), os.X_OK): return [os.path.join(d, "bpfilterd")]
    return None


def daemon_command(path): return ["dotnet", path] if path.endswith(".dll") else [path]


class Daemon:
    """bpfilterd enforcing in the firewall namespace, with its own socket, state and pin directories, and its
    metrics on a Unix socket (BPF run-time statistics off: they would cost every packet) for the daemon-side time of batches."""

    def __init__(self, ctx, topo, tag, dll=None):
        self.work = tempfile.mkdtemp(prefix="bfsuite-daemon-")
        self.sock = os.path.join(self.work, "s.sock")
        self.metrics = os.path.join(self.work, "metrics.sock")
        self.state = os.path.join(self.work, "state")
        self.pins = f"/sys/fs/bpf/bfsuite-{os.getpid()}-{tag}"
        self.log = open(os.path.join(self.work, "log"), "w+")
        self.keep = os.path.join(ctx.out, "logs", tag + ("-baseline" if dll else "") + ".log") if ctx.daemon_logs else None
        self.proc = subprocess.Popen(topo.exec(topo.fw) + ["env", "DOTNET_gcServer=0"] + (["BPFILTERD_SLOW_BATCH_MS=0"] if self.keep else [])
                                     + daemon_command(dll or ctx.daemon) + ["--socket", self.sock,
                                                          "--state-dir", self.state, "--pin-dir", self.pins,
                                                          "--metrics", "unix:" + self.metrics, "--no-bpf-stats"],
                                     stdout=self.log, stderr=self.log)
        t0 = time.monotonic()
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s: s.connect(self.sock)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                    raise RuntimeError("bpfilterd did not start: " + open(self.log.name).read()[-500:])
                time.sleep(0.1)

    def commit_seconds(self):
        """(sum, count) of bpfilterd_commit_duration_seconds: each batch from its arrival to its commit done (engine,
        backend and state file; not the socket), read from the metrics socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.metrics)
            s.settimeout(120)
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(1 << 16): data += chunk
        text = data.decode(errors="replace")
        total = lambda k: sum(float(v) for v in re.findall(rf"^bpfilterd_commit_duration_seconds_{k}(?:{{[^}}]*}})? (\S+)$", text, re.M))
        return total("sum"), total("count")

    def state_bytes(self):
        return sum(os.path.getsize(os.path.join(self.state, f)) for f in os.listdir(self.state)) if os.path.isdir(self.state) else 0

    def journal_bytes(self):
        """The size of the journal beside the state file (0 when there is none: the state was just written whole)."""
        return sum(os.path.getsize(os.path.join(self.state, f)) for f in os.listdir(self.state) if f.endswith(".journal")) if os.path.isdir(self.state) else 0

    def pid(self):
        """The dotnet process (ip netns exec and env exec into it: same pid)."""
        return self.proc.pid

    def memory(self):
        st = open(f"/proc/{self.pid()}/status").read()
        kb = lambda k: int(re.search(rf"{k}:\s+(\d+) kB", st).group(1))
        return kb("VmRSS") / 1024, kb("VmHWM") / 1024

    def program_ids(self):
        """The placement lines and (hook line, chain program id) per attach point, from the explain socket
        (read up to the rules)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.sock + ".explain")
            s.settimeout(600)
            data = b""
            while b"\n== rules" not in data:
                chunk = s.recv(1 << 16)
                if not chunk: break
                data += chunk
        text = data.decode(errors="replace").split("\n== rules")[0]
        placement = text.split("== placement")[-1].split("\n== attach points")[0].split("\n", 1)[-1].strip()
        return placement, re.findall(r"^(\S.*)\n  link id \d+, (?:dispatcher program id \d+ tail-calls )?program id (\d+)", text, re.M)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(60)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        if self.keep:
            os.makedirs(os.path.dirname(self.keep), exist_ok=True)
            shutil.copyfile(self.log.name, self.keep)
        shutil.rmtree(self.pins, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- measurements

def send(ctx, topo):
    """Runs the sender for ctx.seconds; returns (frames the receive side accepted per second, offered per second)."""
    before = topo.tx_packets()
    r = run(topo.exec(topo.tx) + [ctx.sender, "tx0", ctx.frame, str(ctx.seconds)], ctx.seconds + 60)
    accepted = topo.tx_packets() - before
    return accepted / ctx.seconds, int(r.stdout) / ctx.seconds


def probe_counter(side, topo, nft):
    """Packets the probe's rule counted (the chain's last rule)."""
    if side == "iptables":
        out = run(topo.exec(topo.fw) + ["iptables-legacy", "-L", "INPUT", "-v", "-x", "-n"], 600).stdout.strip().splitlines()
        return int(out[-1].split()[0])
    family = "netdev" if side.endswith(("ingress", "xdp")) else "inet"
    out = run(nft + ["list", "chain", family, "bench", "c"], 600).stdout
    m = re.findall(rf"ip saddr (?:{re.escape(PROBE_SRC)}|@s) udp dport {PROBE_DPORT} counter packets (\d+)", out)
    return int(m[-1])


def floor_rate(ctx, mode="xdp-drop"):
    """The rate of a bare drop program: `xdp-drop` on fw0 (the floor every rate is compared with) or `nf-drop`
    (BPF_NETFILTER, ipv4 input: the ceiling of the bpf-input side, the kernel's receive path up to that hook)."""
    topo = Topology("floor" if mode == "xdp-drop" else "nffloor")
    try:
        hold = ctx.seconds + 30
        where = ["fw0", str(hold)] if mode == "xdp-drop" else [str(hold)]
        p = subprocess.Popen(topo.exec(topo.fw) + ["dotnet", ctx.bench, mode] + where, stdout=subprocess.PIPE, text=True)
        if p.stdout.readline().strip() != "attached": raise RuntimeError(f"{mode} floor did not attach")
        rate, offered = send(ctx, topo)
        p.terminate(); p.wait()
        return rate, offered
    finally:
        topo.close()


def bare_testrun(ctx):
    """(a) of a bare `return accept` program per hook, the same harness and frame: what every program pays."""
    out = {}
    for kind in ("xdp", "nf-input4"):
        m = re.search(r"ns=(\d+)", run(["dotnet", ctx.bench, "bare", kind, ctx.frame, "5"], ctx.timeout).stdout)
        out[kind] = int(m.group(1))
    return out


def hook_floors(ctx, floors):
    """At the start and the end of a run: the XDP_DROP floor, and with the bpf-input side the NF_DROP ceiling and
    (with a) both hooks' bare test-run."""
    if "b" in ctx.measure:
        floors.append(floor_rate(ctx))
        if "bpf-input" in ctx.sides: ctx.nf_floors.append(floor_rate(ctx, "nf-drop")[0])
    if "a" in ctx.measure and any(s.startswith("bpf") for s in ctx.sides): ctx.bare.append(bare_testrun(ctx))


def measure(ctx, side, shape, n, results, baseline=False):
    row = {"side": side, "shape": shape, "n": n}
    if baseline: row["baseline"] = True
    results.append(row)
    if side == "iptables" and shape == "set":
        row["note"] = "no sets in iptables (ipset not used)"
        return
    tag = f"{side}-{shape}-{n}"
    topo, daemon = Topology(tag[:5] + str(n)), None
    try:
        nft = topo.exec(topo.fw) + ["nft"]
        if side.startswith("bpf"):
            daemon = Daemon(ctx, topo, tag, ctx.baseline_daemon if baseline else None)
            # the socket through the environment, not an `env` exec: the kernel's nft is timed without one either
            os.environ["BFNFT_SOCKET"] = daemon.sock
            nft = topo.exec(topo.fw) + [ctx.bfnft]
        # c: load
        if side == "iptables":
            row["load_s"] = timed(topo.exec(topo.fw) + ["iptables-legacy-restore"], ctx.timeout, iptables_file(shape, n))
        else:
            family, text = nft_file(side, shape, n)
            path = os.path.join(ctx.work, "ruleset.nft")
            with open(path, "w") as f: f.write(text)
            row["load_s"] = timed(nft + ["-f", path], ctx.timeout)
        if daemon and "f" in ctx.measure:
            row["rss_mib"], row["hwm_mib"] = daemon.memory()
        # a: the attached program, test-run
        if daemon and "a" in ctx.measure:
            placement, ids = daemon.program_ids()
            row["placement"] = placement
            kind = "xdp" if side == "bpf-xdp" else "nf-input4"
            pick = [pid for hook, pid in ids if (kind == "xdp") == ("xdp" in hook.lower()) and ("ipv6" not in hook.lower())]
            if pick:
                r = run(["dotnet", ctx.bench, "attached", pick[0], kind, ctx.frame, "5"], ctx.timeout).stdout
                m = re.search(r"ns=(\d+) min=(\d+) max=(\d+) verdict=(\d+)", r)
                row["testrun_ns"], row["testrun_verdict"] = int(m.group(1)), int(m.group(4))
                row["program_hook"] = [hook for hook, pid in ids if pid == pick[0]][0]
            else:  # auto placement put the chain in the kernel's nf_tables: (b)-(f) still measure bpfilterd's result
                row["note"] = "no BPF program: placed in the kernel's nf_tables (" + placement.replace("\n", "; ")[:200] + ")"
        # b: rate over veth, the probe's counter as a check of what the firewall saw
        if "b" in ctx.measure:
            c0 = probe_counter(side, topo, nft)
            row["rate_pps"], row["offered_pps"] = send(ctx, topo)
            row["counted"] = probe_counter(side, topo, nft) - c0
            row["counted_pps"] = row["counted"] / ctx.seconds
        # d: add rule latency (median of --samples; each appends one more rule)
        if "d" in ctx.measure:
            ts, own, journal = [], [], []
            for k in range(ctx.samples):
                before = daemon.commit_seconds() if daemon else None
                if side == "iptables":
                    cmd = topo.exec(topo.fw) + ["iptables-legacy", "-A", "INPUT", "-s", f"10.254.0.{k + 1}/32", "-p", "udp", "--dport", "7", "-j", "DROP"]
                else:
                    cmd = nft + ["add", "rule", family, "bench", "c", "ip", "saddr", f"10.254.0.{k + 1}", "udp", "dport", "7", "counter", "drop"]
                before = daemon.commit_seconds() if daemon else None
                ts.append(timed(cmd, ctx.timeout))
                if daemon:
                    after = daemon.commit_seconds()
                    if after[1] - before[1] == 1: own.append(after[0] - before[0])
                    journal.append(daemon.journal_bytes())
            row["add_rule_ms"] = statistics.median(ts) * 1000
            row["add_rule_samples_ms"] = [round(t * 1000, 3) for t in ts]
            if daemon and len(own) == ctx.samples:
                row["add_rule_daemon_ms"] = statistics.median(own) * 1000
                row["add_rule_daemon_samples_ms"] = [round(t * 1000, 3) for t in own]
                row["state_bytes"] = daemon.state_bytes()
                # the journal after each add: a record's size is the step (it drops to 0 when the state is written whole again)
                row["add_rule_journal_bytes"] = journal
        # e: add element latency (median of 5)
        if "e" in ctx.measure and shape == "set":
            add_elements(nft, family, daemon, row, ctx.timeout, ctx.samples)
        if daemon and "f" in ctx.measure:
            row["hwm_end_mib"] = daemon.memory()[1]
    except Exception as e:  # one failed cell must not lose the run: it is reported in the table
        row["error"] = str(e)[:300]
        print(f"  {tag}: {row['error']}", file=sys.stderr)
    finally:
        os.environ.pop("BFNFT_SOCKET", None)
        if daemon: daemon.close()
        topo.close()
    print("  " + json.dumps(row), file=sys.stderr)


def add_elements(nft, family, daemon, row, timeout, samples, prefix="10.253.0"):
    """(e): median wall time of `samples` `nft add element` of one address each; with bpfilterd also the daemon-side
    time of each of those batches (its commit-duration metric read before and after each, outside the timed
    command), their median, and the saved state's size after them."""
    ts, own = [], []
    for k in range(samples):
        before = daemon.commit_seconds() if daemon else None
        ts.append(timed(nft + ["add", "element", family, "bench", "s", f"{{ {prefix}.{k + 1} }}"], timeout))
        if daemon:
            after = daemon.commit_seconds()
            if after[1] - before[1] == 1: own.append(after[0] - before[0])
    row["add_element_ms"] = statistics.median(ts) * 1000
    row["add_element_samples_ms"] = [round(t * 1000, 3) for t in ts]
    if daemon:
        if len(own) == samples:
            row["add_element_daemon_ms"] = statistics.median(own) * 1000
            row["add_element_daemon_samples_ms"] = [round(t * 1000, 3) for t in own]
        row["state_bytes"] = daemon.state_bytes()


def big_set_sides(sides):
    """The sides of --sides the big set loads on (iptables has no sets); the input chain's when both families are asked for."""
    sides = [s for s in sides if s != "iptables"]
    return [s for s in sides if s.endswith("input")] if any(s.endswith("input") for s in sides) and len(sides) > 2 else sides


def big_set(ctx, results):
    sides = big_set_sides(ctx.sides)
    runs = [(s, False) for s in sides] + [(s, True) for s in sides if s.startswith("bpf") and ctx.baseline]
    for side, baseline in runs:
        row = {"side": side, "shape": "set", "n": BIG_SET, "big_set": True}
        if baseline: row["baseline"] = True
        results.append(row)
        topo, daemon = Topology("big"), None
        try:
            nft = topo.exec(topo.fw) + ["nft"]
            if side.startswith("bpf"):
                daemon = Daemon(ctx, topo, "big", ctx.baseline_daemon if baseline else None)
                os.environ["BFNFT_SOCKET"] = daemon.sock
                nft = topo.exec(topo.fw) + [ctx.bfnft]
            path = os.path.join(ctx.work, "big.nft")
            family, text = nft_file(side, "set", BIG_SET)
            with open(path, "w") as f: f.write(text)
            row["load_s"] = timed(nft + ["-f", path], ctx.timeout)
            if daemon: row["rss_mib"], row["hwm_mib"] = daemon.memory()
            # element-only changes to the big set: map updates, and (e) as for the N-element sets
            if "e" in ctx.measure: add_elements(nft, family, daemon, row, ctx.timeout, ctx.samples)
        except Exception as e:
            row["error"] = str(e)[:300]
        finally:
            os.environ.pop("BFNFT_SOCKET", None)
            if daemon: daemon.close()
            topo.close()
        print("  " + json.dumps(row), file=sys.stderr)


# ---------------------------------------------------------------------------------------------- output

def fmt(v, f): return "–" if v is None else f.format(v)


def write_outputs(ctx, results, floors):
    floor = statistics.mean(r for r, _ in floors) if floors else None
    lines = [f"# Benchmark suite, {ctx.started:%Y-%m-%d %H:%M} UTC", "",
             f"Command: `{ctx.command}`  ", f"Commit: `{ctx.commit}`; load average at start {ctx.load}; {os.cpu_count()} CPUs; kernel {os.uname().release}  ",
             f"bpfilterd: {getattr(ctx, 'builds', None) or 'not recorded (runs before it ran `dotnet bpfilterd.dll`, JIT)'}", ""]
    when = lambda xs: 'start, end' if len(xs) > 1 else 'start; the run did not reach its end'
    if floors:
        lines.append("XDP_DROP floor (bare `return XDP_DROP` on fw0, same sender): " +
                     ", ".join(f"{r / 1e3:.1f} kpps" for r, _ in floors) + f" ({when(floors)}); mean {floor / 1e3:.1f} kpps")
        lines.append("")
    nf = getattr(ctx, "nf_floors", [])
    if nf and floor:
        lines.append("NF_DROP ceiling of the bpf-input side (bare `return NF_DROP` at ipv4 input, priority 0, no dispatcher): " +
                     ", ".join(f"{r / 1e3:.1f} kpps" for r in nf) + f" ({when(nf)}); mean {statistics.mean(nf) / 1e3:.1f} kpps, "
                     f"{100 * statistics.mean(nf) / floor:.0f} % of the XDP_DROP floor")
        lines.append("")
    bare = getattr(ctx, "bare", [])
    if bare:
        lines.append("(a) of a bare `return accept` program, the same harness and frame (the hook's and the harness's own cost): " +
                     "; ".join(f"XDP {b['xdp']} ns, BPF_NETFILTER {b['nf-input4']} ns" for b in bare) + f" ({when(bare)})")
        lines.append("")
    label = lambda r: r["side"] + (" (baseline)" if r.get("baseline") else "")
    element = lambda r: fmt(r.get('add_element_ms'), '{:.1f}') + ("" if r.get("add_element_daemon_ms") is None else f" ({r['add_element_daemon_ms']:.2f})")
    rule = lambda r: fmt(r.get('add_rule_ms'), '{:.1f}') + ("" if r.get("add_rule_daemon_ms") is None else f" ({r['add_rule_daemon_ms']:.2f})")
    lines += ["| shape | N | side | (a) test-run ns/pkt | (b) kpps | (b) % of floor | (b) probe counter / accepted | (c) load s | (d) add rule ms (daemon) | (e) add element ms (daemon) | (f) RSS / peak MiB | note |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        if r.get("big_set"): continue
        note = r.get("error") or r.get("note") or ""
        rate = r.get("rate_pps")
        check = f"{r['counted'] / (rate * ctx.seconds):.2f}" if rate else None
        side_a = r.get("testrun_ns") if r["side"].startswith("bpf") else None
        lines.append(f"| {r['shape']} | {r['n']} | {label(r)} | {fmt(side_a, '{}') if r['side'].startswith('bpf') else 'n/a'} | "
                     f"{fmt(rate and rate / 1e3, '{:.1f}')} | {fmt(rate and floor and 100 * rate / floor, '{:.0f}')} | {fmt(check, '{}')} | "
                     f"{fmt(r.get('load_s'), '{:.3f}')} | {rule(r)} | {element(r)} | "
                     f"{fmt(r.get('rss_mib'), '{:.0f}')}{'' if r.get('hwm_mib') is None else ' / ' + format(r['hwm_mib'], '.0f')} | {note.replace('|', '/')} |")
    big = [r for r in results if r.get("big_set")]
    if big:
        lines += ["", f"Set of {BIG_SET} addresses, `nft -f` (one rule `ip saddr @s ...`; inet input chain for the -input sides, "
                  "netdev ingress for nft-ingress and bpf-xdp):", "",
                  "| side | load s | (e) add element ms (daemon) | saved state MiB | RSS / peak MiB | note |", "|---|---:|---:|---:|---:|---|"]
        for r in big:
            lines.append(f"| {label(r)} | {fmt(r.get('load_s'), '{:.2f}')} | {element(r)} | {fmt(r.get('state_bytes') and r['state_bytes'] / 2**20, '{:.1f}')} | "
                         f"{fmt(r.get('rss_mib'), '{:.0f}')}{'' if r.get('hwm_mib') is None else ' / ' + format(r['hwm_mib'], '.0f')} | {r.get('error', '')} |")
    lines += ["", "## Targets (issue 12)", ""] + targets(results, floor, big)
    lines += ["", "Columns: (a) BPF_PROG_TEST_RUN of the program bpfilterd attached (its chain program; the ipv4 one for inet), "
              "median of 5 runs, ns per packet, the probe frame as input; n/a for kernel nf_tables and iptables, which have no BPF program. "
              "(b) frames the firewall side took from the veth per second (the sender's tx0 tx_packets: veth counts a frame the receiver's queue refused as a tx drop), "
              f"{ctx.seconds:g} s of traffic; the probe counter column is the probe rule's counter over those frames (1.00: every accepted frame reached the last rule). "
              f"(c) wall time of `nft -f` (`iptables-legacy-restore`). (d) median wall time of {ctx.samples} `nft add rule` (`iptables-legacy -A`) into the loaded chain; in parentheses bpfilterd's own time for those batches, as for (e). "
              f"(e) median wall time of {ctx.samples} `nft add element` of one address; in parentheses bpfilterd's own time for those batches "
              "(the median of each batch's bpfilterd_commit_duration_seconds: engine, backend and saved state, not the socket nor nft). "
              "(f) bpfilterd VmRSS / VmHWM after the load. Rows marked (baseline) ran the --baseline build of bpfilterd."]
    with open(os.path.join(ctx.out, "results.md"), "w") as f: f.write("\n".join(lines) + "\n")
    with open(os.path.join(ctx.out, "results.json"), "w") as f:
        json.dump({"command": ctx.command, "commit": ctx.commit, "builds": getattr(ctx, "builds", None), "started": ctx.started.isoformat(), "seconds": ctx.seconds, "samples": ctx.samples, "load": ctx.load,
                   "sides": ctx.sides, "shapes": ctx.shapes,
                   "floor_pps": [r for r, _ in floors], "nf_floor_pps": getattr(ctx, "nf_floors", []),
                   "bare_testrun_ns": getattr(ctx, "bare", []), "results": results}, f, indent=1)
    plot(ctx, results, floor)


def targets(results, floor, big):
    def cell(side, shape, n, key):
        for r in results:
            if r["side"] == side and r["shape"] == shape and r["n"] == n and not r.get("big_set") and not r.get("baseline") and r.get(key) is not None: return r[key]
        return None
    out = []
    def target(text, value, limit, unit, le=True, scale=1.0):
        if value is None: out.append(f"- {text}: not measured in this run"); return
        met = value * scale <= limit if le else value * scale >= limit
        out.append(f"- {text}: {value * scale:.3g} {unit} (target {'≤' if le else '≥'} {limit:g} {unit}): **{'met' if met else 'not met'}**")
    for side in ("bpf-xdp", "bpf-input"):
        target(f"10,000 same-shape rules, {side}, test-run", cell(side, "same", 10000, "testrun_ns"), 60, "ns")
        target(f"10,000 ClassBench-style rules, {side}, test-run", cell(side, "classbench", 10000, "testrun_ns"), 200, "ns")
        for shape in ("same", "classbench"):
            rate = cell(side, shape, 10000, "rate_pps")
            target(f"veth at 10,000 {shape} rules, {side}, share of the XDP_DROP floor", rate and floor and rate / floor, 85, "%", le=False, scale=100)
    for side in ("bpf-input", "nft-input"):
        target(f"nft -f of 10,000 same-shape rules, {side}", cell(side, "same", 10000, "load_s"), 0.5, "s")
        target(f"nft -f of 100,000 same-shape rules, {side}", cell(side, "same", 100000, "load_s"), 5, "s")
    for side in ("bpf-xdp", "bpf-input", "nft-input"):
        if side == "bpf-xdp" and cell(side, "same", 10000, "add_rule_ms") is None: continue
        target(f"nft add rule into a 10,000-rule chain, {side}", cell(side, "same", 10000, "add_rule_ms"), 20, "ms")
        if side.startswith("bpf-"):
            target(f"nft add rule into a 10,000-rule chain, {side}, bpfilterd's own time", cell(side, "same", 10000, "add_rule_daemon_ms"), 20, "ms")
    for side in ("bpf-xdp", "bpf-input", "nft-ingress", "nft-input"):
        if cell(side, "set", 10000, "add_element_ms") is not None or side in ("bpf-input", "nft-input"):
            target(f"nft add element (set of 10,000), {side}, wall time of the nft command", cell(side, "set", 10000, "add_element_ms"), 1, "ms")
            if side.startswith("bpf-"):
                target(f"nft add element (set of 10,000), {side}, bpfilterd's own time", cell(side, "set", 10000, "add_element_daemon_ms"), 1, "ms")
    for r in big:
        if r.get("baseline"): continue
        target(f"nft -f of a set of {BIG_SET} addresses, {r['side']}", r.get("load_s"), 2, "s")
    return out


def plot(ctx, results, floor):
    if not shutil.which("gnuplot"):
        print("gnuplot not installed (scripts/install-deps.sh installs gnuplot-nox): no PNG", file=sys.stderr)
        return
    series = []
    for side in ctx.sides:
        for shape in ctx.shapes:
            pts = sorted((r["n"], r["rate_pps"] / 1e3) for r in results
                         if r["side"] == side and r["shape"] == shape and r.get("rate_pps") and not r.get("big_set") and not r.get("baseline"))
            if pts: series.append((f"{side} {shape}", pts))
    if not series: return
    data = os.path.join(ctx.work, "plot.dat")
    with open(data, "w") as f:
        for _, pts in series: f.write("".join(f"{n} {v}\n" for n, v in pts) + "\n\n")
    cmds = ["set terminal pngcairo size 1200,750",
            f"set output '{os.path.join(ctx.out, 'rate.png')}'", "set logscale x", "set xlabel 'N (rules or set elements)'",
            "set ylabel 'kpps the firewall side took over veth'", "set logscale y", f"set title 'Packet rate against N ({ctx.started:%Y-%m-%d}, {ctx.seconds:g} s per point)'",
            "set key outside right", "set grid"]
    plots = [f"'{data}' index {i} with linespoints title '{name}'" for i, (name, _) in enumerate(series)]
    if floor: plots.append(f"{floor / 1e3} with lines dashtype 2 title 'XDP\\_DROP floor'")
    cmds.append("plot " + ", ".join(plots))
    run(["gnuplot"], 60, "\n".join(cmds) + "\n")


# ---------------------------------------------------------------------------------------------- main

def render(ctx):
    """Rewrites a run's table and plot from its results.json (the same numbers, the current format)."""
    with open(os.path.join(ctx.render, "results.json")) as f: j = json.load(f)
    ctx.out = ctx.work = ctx.render
    ctx.command, ctx.commit, ctx.seconds, ctx.samples = j["command"], j["commit"], j["seconds"], j.get("samples", 5)
    ctx.started = datetime.datetime.fromisoformat(j["started"])
    ctx.builds = j.get("builds")
    old = open(os.path.join(ctx.render, "results.md")).read() if os.path.exists(os.path.join(ctx.render, "results.md")) else ""
    ctx.load = j.get("load") or (re.findall(r"load average at start (\S+);", old) or ["?"])[0]
    ctx.sides, ctx.shapes = j.get("sides", SIDES), j.get("shapes", SHAPES)
    ctx.nf_floors, ctx.bare = j.get("nf_floor_pps", []), j.get("bare_testrun_ns", [])
    write_outputs(ctx, j["results"], [(r, None) for r in j["floor_pps"]])
    os.remove(os.path.join(ctx.out, "plot.dat"))


def prepare(ctx):
    rel = lambda *p: os.path.join(ROOT, *p)
    bench_dir = rel("bench/Bpfilter.Bench/bin/Release/net10.0")
    # the tree's own builds are brought up to date (incremental: quick when nothing changed), so a run never
    # measures a build older than the commit it names; by default the NativeAOT executable that ships
    if ctx.daemon_dir:
        daemon_dir = ctx.daemon_dir
        if not daemon_dir_command(daemon_dir): raise SystemExit(f"--daemon {ctx.daemon_dir}: no bpfilterd.dll or executable bpfilterd there")
    elif ctx.jit:
        daemon_dir = rel("Bpfilter.Daemon/bin/Release/net10.0")
        run(["dotnet", "build", rel("Bpfilter.Daemon"), "-c", "Release", "-v", "q"], 1800)
    else:
        daemon_dir = rel("out/bench-aot")
        run(["dotnet", "publish", rel("Bpfilter.Daemon"), "-c", "Release", "-r", "linux-x64", "-p:PublishAot=true", "-o", daemon_dir,
             "-v", "q"], 3600)
    if ctx.baseline and not daemon_dir_command(ctx.baseline):
        raise SystemExit(f"--baseline {ctx.baseline}: no bpfilterd.dll or executable bpfilterd there")
    need_bench = bool({"a", "b"} & ctx.measure)  # the XDP_DROP floor and test-run
    if need_bench: run(["dotnet", "build", rel("bench/Bpfilter.Bench"), "-c", "Release", "-v", "q"], 1800)
    if not os.access(rel("patches/nftables/build/bfnft"), os.X_OK):
        run(["make", "-s", "-C", rel("patches/nftables")], 600)
    # copies: a rebuild during a long run must not change what runs
    shutil.copytree(daemon_dir, os.path.join(ctx.work, "daemon"))
    if need_bench: shutil.copytree(bench_dir, os.path.join(ctx.work, "bench"))
    ctx.daemon = daemon_dir_command(os.path.join(ctx.work, "daemon"))[-1]
    ctx.bench = os.path.join(ctx.work, "bench", "bpfilter-bench.dll")
    ctx.baseline_daemon = None
    if ctx.baseline:
        shutil.copytree(ctx.baseline, os.path.join(ctx.work, "baseline"))
        ctx.baseline_daemon = daemon_dir_command(os.path.join(ctx.work, "baseline"))[-1]
    kind = lambda path: "JIT (`dotnet bpfilterd.dll`)" if path.endswith(".dll") else "NativeAOT executable"
    ctx.builds = f"{kind(ctx.daemon)}" + (f"; baseline rows: {kind(ctx.baseline_daemon)}" if ctx.baseline_daemon else "")
    ctx.bfnft = rel("patches/nftables/build/bfnft")
    ctx.sender = os.path.join(ctx.work, "sender")
    run(["gcc", "-O2", "-Wall", "-o", ctx.sender, rel("bench/sender.c")], 120)


def main():
    ctx = parse_args()
    if ctx.render: return render(ctx)
    # `timeout` and ^C end the run through the finally blocks: daemons stopped, namespaces removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("suite: terminated"))
    if os.geteuid() != 0: sys.exit("suite: run as root")
    ctx.started = datetime.datetime.now(datetime.timezone.utc)
    ctx.command = "sudo bench/suite.py " + " ".join(sys.argv[1:])
    ctx.commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], 30, check=False).stdout.strip() or "?"
    if run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"], 30, check=False).stdout.strip():
        ctx.commit += " with uncommitted changes"
    ctx.load = open("/proc/loadavg").read().split()[0]
    ctx.out = ctx.out or os.path.join(ROOT, "bench", "results", ctx.started.strftime("%Y-%m-%d-%H%M"))
    os.makedirs(ctx.out, exist_ok=True)
    ctx.work = tempfile.mkdtemp(prefix="bfsuite-")
    ctx.frame = probe_frame()
    results, floors = [], []
    ctx.nf_floors, ctx.bare = [], []
    try:
        prepare(ctx)
        hook_floors(ctx, floors)
        if ctx.big_set and "c" in ctx.measure: big_set(ctx, results)
        for n in ctx.ns:
            for shape in ctx.shapes:
                for side in ctx.sides:
                    print(f"{shape} N={n} {side}", file=sys.stderr)
                    measure(ctx, side, shape, n, results)
                    if ctx.baseline and side.startswith("bpf"):
                        measure(ctx, side, shape, n, results, baseline=True)
                    write_outputs(ctx, results, floors)  # partial results survive an interrupted run
        hook_floors(ctx, floors)
        write_outputs(ctx, results, floors)
        print(open(os.path.join(ctx.out, "results.md")).read())
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)


if __name__ == "__main__":
    main()
