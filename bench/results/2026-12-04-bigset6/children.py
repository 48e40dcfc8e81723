import sys, re, collections
target = sys.argv[2]; f = sys.argv[1]
samples=[]; cur=[]
for line in open(f, errors='replace'):
    if not line.strip():
        if cur: samples.append(cur); cur=[]
        continue
    if line.startswith((' ', '\t')):
        parts=line.strip().split(' ',1)
        sym=parts[1] if len(parts)>1 else parts[0]
        sym=re.sub(r'\s*\(\S+\)$','',sym)
        cur.append(sym)
if cur: samples.append(cur)
total=len(samples); c=collections.Counter(); n=0
for s in samples:
    idx=[i for i,x in enumerate(s) if target in x]
    if not idx: continue
    n+=1; i=max(idx)
    child=s[i-1] if i>0 else '<self>'
    # first managed-ish or named frame
    c[child[:150]]+=1
print(f"{target}: {n}/{total} = {100*n/total:.1f}%")
for k,v in c.most_common(25): print(f"{100*v/total:6.2f}% {k}")
