import collections,sys
# usage: python3 phase.py PERF_SCRIPT_OUTPUT: samples per phase of the load, with and without the GC on the stack
samples=open(sys.argv[1]).read().split('\n\n')
c=collections.Counter()
for s in samples:
    lines=[l.strip() for l in s.strip().split('\n')[1:] if l.strip()]
    if not lines: continue
    st=' '.join(lines)
    gc='gc_heap' in st or 'GCHeap' in st
    inprep='EnforcingBackend__Prepare' in st
    incomp='ProgramCompiler__Compile' in st; inload='LoadedProgram__Load' in st; lift='LiftChains' in st; lower='LoweringPipeline' in st
    ph = 'load' if inload else 'compile-lower' if (incomp and lower) else 'compile' if incomp else 'lift' if lift else 'prep-other' if inprep else 'other'
    c[(ph,'gc' if gc else 'nogc')]+=1
tot=sum(c.values())
for k,v in sorted(c.items()): print(k, v, f'{100*v/tot:.1f}%')
print('gc total', f"{100*sum(v for k,v in c.items() if k[1]=='gc')/tot:.1f}%")
