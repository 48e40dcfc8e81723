#!/usr/bin/env python3
# Medians of rss-SIDE-N.txt (rss-pairs.sh): daemon RSS after the load, after the 16 adds, peak; the 15th add's commit (the stall)
import glob, re, statistics
for side in ("base", "branch"):
    rows = []
    for f in sorted(glob.glob(f"rss-{side}-*.txt"), key=lambda f: int(re.findall(r"\d+", f)[-1])):
        t = open(f).read()
        m = re.search(r"after load ([\d.]+) MB, after the adds ([\d.]+) MB, peak ([\d.]+) MB", t)
        commits = [float(x) for x in re.findall(r"batch committed in ([\d.]+) ms", t)]
        rows.append((float(m[1]), float(m[2]), float(m[3]), commits[14]))
        print(f, *rows[-1])
    print(side, "median of", len(rows), "after load %.1f MB, after the adds %.1f MB, peak %.1f MB, 15th add %.0f ms" % tuple(statistics.median(r[i] for r in rows) for i in range(4)))
