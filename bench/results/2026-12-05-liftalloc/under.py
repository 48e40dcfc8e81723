import sys,re,collections
# usage: under.py SCRIPT SUBSTR -> for samples whose stack contains SUBSTR, the deepest project frame (where the time goes)
f=open(sys.argv[1]); target=sys.argv[2]
tot=0; c=collections.Counter(); stack=[]; n=0
def flush():
    global tot,n
    if not stack: return
    tot+=1
    if not any(target in fr for fr in stack): return
    n+=1
    for g in stack:
        if re.match(r'(Nft_|Bpfilter|bpfilterd)', g): c[g]+=1; break
for line in f:
    line=line.rstrip()
    if not line: flush(); stack=[]; continue
    if line.startswith('\t') or line.startswith(' '):
        p=line.split()
        if len(p)>=2: stack.append(re.sub(r'\+0x[0-9a-f]+$','',p[1]))
flush()
print('total',tot,'under',n, f"{100*n/tot:.2f}%")
for k,v in c.most_common(25): print(f"{100*v/tot:5.2f}% {k}")
