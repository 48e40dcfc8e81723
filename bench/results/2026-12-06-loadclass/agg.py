import sys, re, collections
# usage: perf script -i FILE | python3 agg.py [depth] (profile-*.txt: depth 1, then phase.py FILE_OF_PERF_SCRIPT)
# usage: perf script -i X | agg.py [depth]  : inclusive samples per app frame (innermost N app frames), plus leaf class
depth = int(sys.argv[1]) if len(sys.argv) > 1 else 1
incl = collections.Counter(); leafapp = collections.Counter(); total = 0
stack = []
def flush():
    global total
    if not stack: return
    total += 1
    app = [f for f in stack if f.startswith(('Bpfilter_', 'Nft_', 'bpfilterd_'))]
    kind = 'gc' if any('gc_heap' in f or 'GCHeap' in f for f in stack) else ('kernel' if stack[0].startswith('[k]') else 'user')
    seen = set()
    for f in app:
        if f not in seen: incl[f] += 1; seen.add(f)
    key = ' < '.join(a.replace('Bpfilter_Backend_Bpfilter_Backend_','B.').replace('bpfilterd_Bpfilter_Daemon_','D.') for a in app[:depth]) or '(none)'
    leafapp[(key, kind)] += 1
for line in sys.stdin:
    line = line.rstrip('\n')
    if not line.strip():
        flush(); stack = []; continue
    if line[0] not in ' \t': continue
    parts = line.strip().split(None, 1)
    if len(parts) < 2: continue
    sym = parts[1].rsplit(' (', 1)[0]
    sym = sym.split('+0x')[0]
    if '([kernel' in line: sym = '[k]' + sym
    stack.append(sym)
flush()
print('total', total)
for k, v in leafapp.most_common(45): print(f'{100*v/total:5.1f}% {k[1]:6} {k[0][:230]}')
print('--- inclusive')
for k, v in incl.most_common(60): print(f'{100*v/total:5.1f}% {k[:150]}')
