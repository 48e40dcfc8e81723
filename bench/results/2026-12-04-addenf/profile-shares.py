import sys,re
pats=sys.argv[2:]
samples=[];cur=[]
for l in open(sys.argv[1],errors='replace'):
    if not l.strip():
        if cur: samples.append(cur); cur=[]
        continue
    cur.append(l)
if cur: samples.append(cur)
n=len(samples)
out=[f"{n} samples"]
for p in pats:
    c=sum(1 for s in samples if any(p in x for x in s[1:]))
    out.append(f"{p}={100*c/n:.1f}%")
print(" ".join(out))
