import sys,re,statistics,collections
# usage: med.py FILE... -> per (shape-size, arm): medians of daemon CPU, nft -f wall, peak RSS and the daemon's phases
d=collections.defaultdict(lambda: collections.defaultdict(list))
for f in sys.argv[1:]:
    for l in open(f):
        m=re.match(r'([a-z0-9]+)-([a-z]+-\d+)-\d+ rc=0 wall=([\d.]+) daemon_cpu=([\d.]+)s load=([\d.]+) hwm_kb=(\d+) state_bytes=(\d+)',l)
        if not m: continue
        k=(m[2],m[1]); v=d[k]
        v['wall'].append(float(m[3])); v['cpu'].append(float(m[4])); v['load'].append(float(m[5])); v['hwm_mb'].append(int(m[6])/1024); v['bytes'].append(int(m[7]))
        for ph in ('apply','backend prepare','state save'):
            x=re.search(ph+r' ([\d.]+) ms',l)
            if x: v[ph].append(float(x[1]))
        x=re.search(r'lift (\d+) ms',l)
        if x: v['lift'].append(float(x[1]))
for k in sorted(d):
    v=d[k]; print(k[0],k[1],'n=%d'%len(v['cpu']),' '.join(f"{n}={statistics.median(x):.2f}" for n,x in v.items() if n not in('load','bytes')),'cpu_all=',v['cpu'],'load=%s-%s'%(min(v['load']),max(v['load'])),'bytes=',sorted(set(v['bytes'])))
