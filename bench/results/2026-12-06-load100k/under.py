import sys,collections
# usage: under.py FILE SUBSTR [N] -> for samples with SUBSTR on the stack: the frame just below it (callee) and the leaf
f,sub=sys.argv[1],sys.argv[2]
stacks=[];cur=[]
for line in open(f):
    line=line.rstrip()
    if not line:
        if cur: stacks.append(cur); cur=[]
        continue
    if line[0] not in ' \t': cur=[]; continue
    parts=line.split(None,1)
    cur.append(parts[1] if len(parts)>1 else '?')
if cur: stacks.append(cur)
child=collections.Counter(); leaf=collections.Counter(); n=0; tot=len(stacks)
for s in stacks:
    idx=[i for i,fr in enumerate(s) if sub in fr]
    if not idx: continue
    i=idx[-1]; n+=1
    child[s[i-1][:110] if i>0 else '(self)']+=1
    # first non-GC frame from leaf toward root, to attribute allocations
    leaf[s[0][:110]]+=1
print(f"{sub}: {100*n/tot:.1f}% of {tot}")
print("-- callees:")
for k,v in child.most_common(int(sys.argv[3]) if len(sys.argv)>3 else 20): print(f"{100*v/tot:5.1f}% {k}")
print("-- leaves:")
for k,v in leaf.most_common(12): print(f"{100*v/tot:5.1f}% {k}")
