#!/usr/bin/env python3
# Medians of the per-batch phases in add-profile.py's output (its `batch committed` lines), per run:
#   phases.py cpu-pairs.txt
import re, sys, statistics
runs = []
for line in open(sys.argv[1]):
    if "daemon cpu per add" in line:
        runs.append((line.split(":")[0], re.search(r"cpu per add (\d+) ms", line).group(1), re.search(r"load ([\d.]+)", line).group(1), {}))
    elif "batch committed" in line and runs:
        for name, ms in re.findall(r"(validate|state save|backend prepare|backend commit) ([\d.]+) ms", line):
            runs[-1][3].setdefault(name, []).append(float(ms))
for head, cpu, load, ph in runs:
    print(f"{head}: cpu/add {cpu} ms, load {load}; " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in ph.items()))
