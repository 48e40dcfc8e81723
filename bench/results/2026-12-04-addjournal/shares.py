import sys, subprocess
names = ["NfTablesEndpoint::ProcessBatch", "EnforcingBackend::Prepare", "NfTablesEndpoint::JournalRules", "StateCodec::RuleChanges",
         "BackendStateDelta::Of", "EnforcingBackend::ExportState", "StateCodec::Fnv1a", "Transaction::Validate", "ChainValidator::Validate", "ChainValidator::HasJumps"]
for f in sys.argv[1:]:
    out = subprocess.run(["perf", "script", "-i", f, "-F", "ip,sym"], capture_output=True, text=True).stdout
    samples = [s for s in out.split("\n\n") if s.strip()]
    counts = {n: sum(1 for s in samples if n in s) for n in names}
    print(f, len(samples), " ".join(f"{n.split('::')[-1] if 'Prepare' not in n else n}={100*c/len(samples):.1f}%" for n, c in counts.items()))
