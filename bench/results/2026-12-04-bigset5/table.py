import re, sys, statistics
for f in sys.argv[1:]:
    runs=[]; cur=None
    for line in open(f):
        m=re.match(r'== (\S+) run (\d+)', line)
        if m: cur={'side':m.group(1).rstrip('/').split('/')[-1],'run':m.group(2)}; runs.append(cur); continue
        if cur is None: continue
        m=re.match(r'([\d.]+) [\d.]+ [\d.]+ \d+/\d+ \d+ ', line)
        if m and 'load' not in cur: cur['load']=float(m.group(1))
        m=re.search(r'nft: wall ([\d.]+) s, user ([\d.]+) s', line)
        if m: cur['wall']=float(m.group(1)); cur['user']=float(m.group(2))
        m=re.search(r'daemon cpu (\d+) ticks', line)
        if m: cur['cpu']=int(m.group(1))/100
        m=re.search(r'apply ([\d.]+) ms.*backend prepare ([\d.]+) ms.*state save ([\d.]+) ms', line)
        if m and 'batch committed in' in line and '261 message' in line: cur['phases']=tuple(float(x)/1000 for x in m.groups())
        m=re.search(r'lift (\d+) ms', line)
        if m and 'lift' not in cur: cur['lift']=int(m.group(1))/1000
    print(f"\n{f}")
    print("| run | load avg | wall s | nft user s | daemon CPU s | daemon apply / prepare (lift) / save s |")
    print("|---|---:|---:|---:|---:|---|")
    for r in runs:
        if 'cpu' not in r: continue
        p=r.get('phases',(0,0,0))
        print(f"| {r['side']} {r['run']} | {r['load']:.1f} | {r['wall']:.1f} | {r['user']:.2f} | {r['cpu']:.2f} | {p[0]:.1f} / {p[1]:.1f} ({r.get('lift',0):.1f}) / {p[2]:.1f} |")
    for side in dict.fromkeys(r['side'] for r in runs):
        rs=[r for r in runs if r['side']==side and 'cpu' in r]
        if not rs: continue
        med=lambda k: statistics.median(r[k] for r in rs)
        ph=[statistics.median(r['phases'][i] for r in rs) for i in range(3)]
        print(f"| **median {side}** | {min(r['load'] for r in rs):.0f}-{max(r['load'] for r in rs):.0f} | {med('wall'):.1f} | {med('user'):.2f} | **{med('cpu'):.2f}** | {ph[0]:.1f} / {ph[1]:.1f} ({med('lift'):.1f}) / {ph[2]:.1f} |")
