#!/usr/bin/env python3
# perf-phases.py FILE: splits `perf script -F ip,sym,dso` of a bpfilterd (JIT, DOTNET_PerfMapEnabled=1, DOTNET_EnableWriteXorExecute=0)
# into the batch phases by the first phase frame on each stack, and the share of each that is in libclrjit (the JIT compiling)
import sys, re, collections
f=sys.argv[1]
phases=[('apply','Transaction::Apply'),('lift','NftLifter::LiftChains'),('placement','PlacementPlan::Build'),('enforcer','Enforcer::Prepare'),('save','NfTablesEndpoint::SaveState'),('bcommit','EnforcingBackend::Commit'),('validate','ChainValidator'),('batch-other','NfTablesEndpoint::ProcessBatch'),('frame','DaemonConnection')]
stacks=[]; cur=[]
for line in open(f, errors='replace'):
    line=line.rstrip()
    if not line:
        if cur: stacks.append(cur); cur=[]
        continue
    cur.append(line)
if cur: stacks.append(cur)
tot=len(stacks); c=collections.Counter(); j=collections.Counter()
for s in stacks:
    ph='other'
    for name,p in phases:
        if any(p in x for x in s): ph=name; break
    c[ph]+=1
    if any('libclrjit' in x for x in s): j[ph]+=1
print('total',tot)
for k,v in c.most_common(): print(f"{k:12s} {100*v/tot:5.1f}%  of it in the JIT {100*j[k]/tot:5.1f}%")
