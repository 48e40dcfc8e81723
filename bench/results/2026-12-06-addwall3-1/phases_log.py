import re,statistics as st,sys
for f in sys.argv[1:]:
    L=[l for l in open(f) if 'batch committed' in l and ', 1 message(s)' in l]
    L=L[1:]  # the first add after the load: tiering
    out=[]
    for k in ['committed in','backend prepare','backend commit','state save']:
        v=[float(re.search(k+r' ([\d.]+) ms',l).group(1)) for l in L]
        out.append(f"{k} {st.median(v):.1f} (min {min(v):.1f})")
    print(f.split('/')[-1], len(L), '; '.join(out))
