#!/usr/bin/env python3
# usage: shares.py SCRIPT -- shares of a `perf script` (one sample a stack) that hold each frame, as in results.md
import sys
samples, cur = [], []
for line in open(sys.argv[1], errors='replace'):
    if not line.strip():
        if cur: samples.append(cur); cur = []
        continue
    if line.startswith((' ', '\t')): cur.append(line)
if cur: samples.append(cur)
n = len(samples)
rows = [('NEWSETELEM (Transaction::NewSetElem)', 'Transaction::NewSetElem'), ('  the element tree insert (ElementSet+Builder::TryAdd)', 'Builder::TryAdd'),
        ('backend prepare (EnforcingBackend::Prepare)', 'EnforcingBackend::Prepare'), ('  the lift (NftLifter::LiftChains)', 'NftLifter::LiftChains'),
        ("  the lift's set build (SetLifter::Build)", 'SetLifter::Build'), ('  the engine\'s elements as the lifter\'s list (SourceView)', 'SourceView::Table'),
        ('  compile (ProgramCompiler::Compile)', 'ProgramCompiler::Compile'), ("  the programs' load (LoadedProgram::Load)", 'LoadedProgram::Load'),
        ('  set copies created and filled (SetCopies::Create)', 'SetCopies::Create'), ('  map fills in the kernel (generic_map_update_batch)', 'generic_map_update_batch'),
        ("  the maps' preallocation (htab_map_alloc)", 'htab_map_alloc'), ("  the loaded program's entry dictionary (LoadedProgram::.ctor)", 'LoadedProgram::.ctor'),
        ('state save (NfTablesEndpoint::SaveState)', 'NfTablesEndpoint::SaveState'), ('  its encode (StateCodec::Encode)', 'StateCodec::Encode'),
        ('  its write (StateStore::Write)', 'StateStore::Write'), ('reading the batch frame (DaemonConnection, not in the engine)', '@read'),
        ('idle thread-pool workers (LowLevelLifoSemaphore, LowLevelSpinWaiter)', '@spin'), ('memset of fresh memory', '__memset'), ('page faults', 'asm_exc_page_fault')]
for name, k in rows:
    if k == '@read': c = sum(1 for x in samples if any('DaemonConnection' in l for l in x) and not any('ProcessCore' in l for l in x))
    elif k == '@spin': c = sum(1 for x in samples if any('LowLevelLifoSemaphore' in l or 'LowLevelSpinWaiter' in l for l in x))
    else: c = sum(1 for x in samples if any(k in l for l in x))
    print(f"| {name} | {100 * c / n:.1f} % ({c}) |")
print(f"samples: {n}")
