import sys,re,statistics,collections
# usage: med.py FILE... -> medians of daemon CPU, wall, state save and backend prepare per side (the tag before -SIZE-N) and size
d=collections.defaultdict(lambda: collections.defaultdict(list))
for f in sys.argv[1:]:
    for l in open(f):
        m=re.match(r'([a-z]+)-(\d+)-\d+ rc=0 wall=([\d.]+) daemon_cpu=([\d.]+)s load=([\d.]+) hwm_kb=(\d+) state_bytes=(\d+)',l)
        if not m: continue
        k=(int(m[2]),m[1]); d[k]['wall'].append(float(m[3])); d[k]['cpu'].append(float(m[4])); d[k]['load'].append(float(m[5])); d[k]['hwm_mb'].append(int(m[6])/1024)
        d[k]['bytes'].append(int(m[7]))
        for ph in ('backend prepare','state save','apply'):
            x=re.search(ph+r' ([\d.]+) ms',l)
            if x: d[k][ph].append(float(x[1]))
for k in sorted(d):
    v=d[k]; print(k[0],k[1],'n=%d'%len(v['cpu']),' '.join(f"{n}={statistics.median(x):.2f}" for n,x in v.items() if n not in('load','bytes')),'cpu_all=',v['cpu'],'load=%s-%s'%(min(v['load']),max(v['load'])),'bytes=',sorted(set(v['bytes'])))
