namespace Nft.Engine;

/// <summary>Knobs of the emulation; every one has a default that behaves like the kernel.</summary>
public sealed class NfTablesOptions
{
    /// <summary>Enforces committed rulesets; the null backend when unset.</summary>
    public IRulesetBackend? Backend { get; init; }

    /// <summary>
    /// When set, netdev/inet-ingress base chains must name an existing device (ENOENT otherwise), as
    /// kernels before 6.16 required. Unset, any name is accepted, as 6.16 and later do.
    /// </summary>
    public Func<string, bool>? DeviceExists { get; init; }

    /// <summary>
    /// Refuse what BPF never runs (bridge/arp tables, nat/route chains, objects other than
    /// counter/quota/limit) with EOPNOTSUPP: bpfilterd --placement bpf-only. By default bpfilterd places
    /// such chains in the kernel's nf_tables and turns this off. Flowtables are refused either way.
    /// </summary>
    public bool RefuseOutOfScope { get; init; } = true;

    /// <summary>Monotonic milliseconds for element timeouts; Environment.TickCount64 when unset.</summary>
    public Func<long>? Clock { get; init; }

    /// <summary>
    /// The process-independent monotonic clock (milliseconds) that <see cref="Clock"/>'s offset is saved
    /// against, so a state imported by another process moves element deadlines correctly;
    /// Environment.TickCount64 when unset. Tests with a frozen <see cref="Clock"/> freeze this too.
    /// </summary>
    public Func<long>? Monotonic { get; init; }

    /// <summary>
    /// Milliseconds per jiffy (1000 / CONFIG_HZ) of the kernel emulated: the kernel keeps set and element
    /// timeouts and expirations in whole jiffies (nf_msecs_to_jiffies64 rounds down) and lists them back
    /// in milliseconds, so a `timeout 1001ms` lists as `1s` at HZ 250 and one of `3ms` expires at once.
    /// bpfilterd sets it with <see cref="Clock"/> on the kernel's jiffies; 1 (whole milliseconds) when unset.
    /// </summary>
    public int TickMs { get; init; } = 1;

    /// <summary>
    /// NFTA_GEN_PROC_PID and NFTA_GEN_PROC_NAME for a requester's netlink port id. By default the port id
    /// is taken as the pid (libmnl autobinds to it) and the name is read from /proc.
    /// </summary>
    public Func<uint, (uint Pid, string Name)>? Requester { get; init; }

    /// <summary>
    /// Called after every change of the committed ruleset (a commit that changed something, a released
    /// owner's tables) and after a request that reset counters, under the endpoint's lock, with the state to save
    /// (what <see cref="NfTablesEndpoint.ExportState"/> returns at that moment): bpfilterd writes it whole. The next
    /// rule record (<see cref="RulesCommitted"/>) follows these bytes.
    /// </summary>
    public Action<byte[]>? StateChanged { get; init; }

    /// <summary>
    /// Called instead of <see cref="StateChanged"/> after a commit that changed only set elements, under the endpoint's lock, with one element
    /// journal record (<see cref="NfTablesEndpoint.ImportState(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>
    /// replays them): its size is that of the change, not of the sets. Returns false when it did not keep
    /// the record; <see cref="StateChanged"/> is called then.
    /// </summary>
    public Func<byte[], bool>? ElementsCommitted { get; init; }

    /// <summary>
    /// Called instead of <see cref="StateChanged"/> after a commit that changed only rules of existing chains
    /// (added, inserted, replaced, deleted) and elements of existing sets, under the endpoint's lock, with one
    /// journal record of those changes and the backend's state (<see cref="IRulesetBackend.ExportState"/>) after
    /// the commit. Returns false when it did not keep the record; <see cref="StateChanged"/> is called then.
    /// </summary>
    public Func<byte[], bool>? RulesCommitted { get; init; }

    /// <summary>
    /// Called when a batch has been handled, under the endpoint's lock, with how it ended and how long it took
    /// (bpfilterd's metrics). Not called for owner-table releases or a restored state being enforced again.
    /// </summary>
    public Action<BatchOutcome>? BatchFinished { get; init; }
}
