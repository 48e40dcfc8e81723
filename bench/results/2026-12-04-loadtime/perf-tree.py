#!/usr/bin/env python3
# perf-tree.py FILE REGEX LEVELS: the call tree under the outermost frame matching REGEX, LEVELS deep, of `perf script -F ip,sym`
# (shares of all samples, 0.8 % and up)
import sys, re, collections
f, pat, levels = sys.argv[1], re.compile(sys.argv[2]), int(sys.argv[3])
stacks=[]; cur=[]
def clean(sym):
    sym=re.sub(r'\(.*\)', '()', sym); sym=re.sub(r'\[(QuickJitted|Optimized|OptimizedTier1|Tier1|Tier0)\]','',sym)
    m=re.search(r'([\w.`+<>|]+::[\w.`<>|]+)\(\)', sym)
    return m.group(1)[-90:] if m else sym[-60:]
for line in open(f, errors='replace'):
    line=line.rstrip()
    if not line:
        if cur: stacks.append(cur); cur=[]
        continue
    parts=line.strip().split(None,1)
    cur.append(clean(parts[1] if len(parts)>1 else parts[0]))
if cur: stacks.append(cur)
tot=len(stacks)
tree=collections.Counter()
for s in stacks:
    idx=[i for i,x in enumerate(s) if pat.search(x)]
    if not idx: continue
    i=max(idx)
    path=s[max(0,i-levels):i+1][::-1]
    for d in range(1,len(path)+1): tree[tuple(path[:d])]+=1
for k,v in sorted(tree.items()):
    if 100*v/tot>=0.8: print(f"{100*v/tot:6.2f}% " + "  "*(len(k)-1) + k[-1])
