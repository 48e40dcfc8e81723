#!/usr/bin/env python3
# usage: split.py LOG... -- per load of run.sh: nft start -> batch start (nft parses, encodes, sends; the daemon reads),
# the batch (daemon log), batch end -> nft exit; nft's CPU and the daemon's CPU
import re, sys
from datetime import datetime
def t(s): return datetime.strptime(s, "%H:%M:%S.%f")
print("| log | run | load | wall s | nft user+sys s | before the batch s | batch s (apply / prepare / save) | after s | daemon CPU s |")
print("|---|---|---:|---:|---:|---:|---|---:|---:|")
for f in sys.argv[1:]:
    run = None
    for line in open(f):
        if line.startswith("=="): run = line.split()[1].rstrip('/').split('/')[-2 if 'net10.0' in line else -1]
        m = re.match(r"([\d.]+) [\d.]+ [\d.]+ \S+ \S+ (\S+)", line)
        if m and run is None: run = m.group(2)
        if m: load = m.group(1)
        if line.startswith("nft start"): s = t(line.split()[2])
        if line.startswith("nft end"): e = t(line.split()[2])
        m = re.match(r"nft: wall ([\d.]+) s, user ([\d.]+) s, sys ([\d.]+) s", line)
        if m: wall, nu = float(m.group(1)), float(m.group(2)) + float(m.group(3))
        m = re.match(r"daemon cpu (\d+) ticks", line)
        if m: cpu = int(m.group(1)) / 100
        m = re.search(r"T([\d:.]+)Z bpfilterd: batch committed in (\d+) ms, 261.*apply ([\d.]+) ms.*prepare ([\d.]+) ms.*state save ([\d.]+) ms", line)
        if m:
            be = t(m.group(1)); b = int(m.group(2)) / 1000
            ph = f"{float(m.group(3))/1000:.1f} / {float(m.group(4))/1000:.1f} / {float(m.group(5))/1000:.1f}"
        if line.startswith("-rw"):
            print(f"| {f.split('/')[-1]} | {run} | {load} | {wall:.1f} | {nu:.2f} | {(be - s).total_seconds() - b:.1f} | {b:.1f} ({ph}) | {(e - be).total_seconds():.1f} | {cpu:.2f} |")
            run = None
