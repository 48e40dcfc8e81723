import sys,re,collections
# usage: leafunder.py SCRIPT SUBSTR -> for samples whose stack contains SUBSTR: leaf frame and the frame just above SUBSTR chain
f=open(sys.argv[1]); target=sys.argv[2]
tot=0; c=collections.Counter(); d=collections.Counter(); stack=[]; n=0
def flush():
    global tot,n
    if not stack: return
    tot+=1
    idx=[i for i,fr in enumerate(stack) if target in fr]
    if not idx: return
    n+=1
    c[stack[0]]+=1
    i=idx[0]
    d[stack[i-1] if i>0 else '-']+=1
for line in f:
    line=line.rstrip()
    if not line: flush(); stack=[]; continue
    if line.startswith('\t') or line.startswith(' '):
        p=line.split()
        if len(p)>=2: stack.append(re.sub(r'\+0x[0-9a-f]+$','',p[1]))
flush()
print('total',tot,'under',n, f"{100*n/tot:.2f}%")
print('leaves:')
for k,v in c.most_common(12): print(f"{100*v/tot:5.2f}% {k}")
print('callees:')
for k,v in d.most_common(12): print(f"{100*v/tot:5.2f}% {k}")
