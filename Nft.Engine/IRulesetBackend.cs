using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// What enforces a committed ruleset (BPF programs and maps). The emulation calls
/// <see cref="Prepare"/> with the change a batch would make; the backend compiles and loads it
/// without making it live, or throws <see cref="BackendRefusal"/> to refuse the whole batch. Then
/// exactly one of <see cref="Commit"/> (make it live) or <see cref="Abort"/> (drop what was staged) follows.
/// </summary>
public interface IRulesetBackend
{
    void Prepare(RulesetChange change);
    void Commit();
    void Abort();

    /// <summary>Totals the data plane counted for a counter expression or named counter/quota, added to the emulated cell; null if none.</summary>
    CounterValue? ReadCounter(CounterRef counter);

    /// <summary>
    /// What the data plane counted for a set element's counter since the element was added, added to the
    /// counter the element was given; null when the data plane does not count it.
    /// </summary>
    CounterValue? ReadElementCounter(ElementCounterRef element) => null;

    /// <summary>
    /// Bytes the data plane consumed for the quota that is statement <paramref name="index"/> of a set element,
    /// added to the `used` the element was given; null when the data plane does not run it.
    /// </summary>
    ulong? ReadElementQuota(ElementCounterRef element, int index) => null;

    /// <summary>Zeroes the data plane's totals for a counter (GETRULE_RESET / GETOBJ_RESET).</summary>
    void ResetCounter(CounterRef counter);

    /// <summary>
    /// A request starts: counters read while it is answered may come from one snapshot (a listing of
    /// many rules reads the kernel's counters once), taken after this call.
    /// </summary>
    void BeginRequest() { }

    /// <summary>
    /// The live elements of a set the data plane's packet path writes (`add @s`, `update @s`, `delete @s` in a chain
    /// the backend runs, in BPF or in the kernel's nf_tables): key, the element's own timeout, milliseconds left in
    /// Expiration, and its statements where the data plane keeps their state. The emulation takes them as the set's
    /// elements when it lists the set and when a batch first targets it: a batch then deletes, flushes, gets, renews
    /// and counts against `size` the elements the packet path added, as the kernel's transaction does. Null when the
    /// committed elements are the truth.
    /// </summary>
    IReadOnlyList<Nft.Bytecode.Objects.SetElement>? PacketPathElements(byte family, string table, string set) => null;

    /// <summary>
    /// What the backend keeps besides the committed ruleset and must survive a restart (e.g. counter totals
    /// carried over from replaced programs, reset baselines), saved in the state file; null for nothing.
    /// </summary>
    byte[]? ExportState() => null;

    /// <summary>Given back what <see cref="ExportState"/> returned when the state file is imported, before the restored ruleset is prepared.</summary>
    void ImportState(ReadOnlySpan<byte> state) { }
}

/// <summary>Packets and bytes.</summary>
public readonly record struct CounterValue(ulong Packets, ulong Bytes)
{
    /// <summary>What was counted beyond <paramref name="baseline"/> (a reset's, or what an element was given); none below it.</summary>
    public CounterValue Since(CounterValue baseline) =>
        new(Packets >= baseline.Packets ? Packets - baseline.Packets : 0, Bytes >= baseline.Bytes ? Bytes - baseline.Bytes : 0);
}

/// <summary>The counter of one set element, named by the element's key (and key end, for a concatenated range).</summary>
public readonly record struct ElementCounterRef(byte Family, string Table, string Set, byte[] Key, byte[]? KeyEnd);

/// <summary>
/// Names one counter: a counter expression (chain and rule handle, expression index) or a named object
/// (<see cref="ObjectName"/> set, chain null) of type <see cref="ObjectType"/>: nf_tables keys objects by table, type
/// and name, so a counter and a quota may share a name (Unspec for an expression).
/// </summary>
public readonly record struct CounterRef(byte Family, string Table, string? Chain, ulong RuleHandle, int ExpressionIndex, string? ObjectName,
    Nft.Bytecode.NftObjectType ObjectType = Nft.Bytecode.NftObjectType.Unspec)
{
    /// <summary>The named object <paramref name="name"/> of type <paramref name="type"/>.</summary>
    public static CounterRef Named(byte family, string table, string name, uint? type) =>
        new(family, table, null, 0, 0, name, (Nft.Bytecode.NftObjectType)(type ?? 0));
}

/// <summary>
/// What a batch changes. <see cref="Tables"/> is the whole ruleset the batch would produce, as the typed
/// Nft.Bytecode objects the lifter reads; it is built on first use, so a backend that handles an
/// element-only change from <see cref="SetDeltas"/> alone never pays for it. <see cref="ElementsOnly"/>
/// is true when the batch only added or removed elements of sets that existed before it.
/// </summary>
public sealed class RulesetChange
{
    readonly Func<IReadOnlyList<SourceTable>> _build;
    IReadOnlyList<SourceTable>? _tables;

    public RulesetChange(Func<IReadOnlyList<SourceTable>> tables, bool elementsOnly, IReadOnlyList<SetDelta> setDeltas)
    {
        _build = tables;
        ElementsOnly = elementsOnly;
        SetDeltas = setDeltas;
    }

    public IReadOnlyList<SourceTable> Tables => _tables ??= _build();
    public bool ElementsOnly { get; }
    public IReadOnlyList<SetDelta> SetDeltas { get; }

    /// <summary>
    /// The sets this batch deleted and created anew by the same name (their table or themselves deleted and added back:
    /// another handle). The kernel's new set holds only what the batch gave it: what the data plane held for the old
    /// one (elements the packet path added, element counters, quotas, limits) is not the new set's.
    /// </summary>
    public IReadOnlyList<(byte Family, string Table, string Set)> RecreatedSets { get; init; } = [];

    /// <summary>
    /// The tables this batch deleted and added back by the same name (another handle): their rules and objects are new
    /// ones, whose counters count from zero (or what the batch gave them), though a re-created table hands out the same
    /// rule handles again.
    /// </summary>
    public IReadOnlyList<(byte Family, string Table)> RecreatedTables { get; init; } = [];

    /// <summary>
    /// The named objects (counter, quota, limit...; <see cref="Nft.Bytecode.NftObjectType"/>) this batch deleted and
    /// created anew by the same name and type (their table or themselves deleted and added back): the kernel's new
    /// object starts from what the batch gave it, not from what the data plane counted, consumed or spent for the old one.
    /// </summary>
    public IReadOnlyList<(byte Family, string Table, string Object, uint Type)> RecreatedObjects { get; init; } = [];

    /// <summary>
    /// The elements this batch deleted and added back by the same key in a set it kept (in <see cref="SetDeltas"/> only
    /// when their data changed): the kernel's new element counts, consumes and spends from what the batch gave it.
    /// </summary>
    public IReadOnlyList<(byte Family, string Table, string Set, Nft.Bytecode.Objects.SetElement Element)> RenewedElements { get; init; } = [];
}

/// <summary>The elements a batch added to and removed from one set (an element added and removed again in the same batch appears in neither).</summary>
public sealed record SetDelta(byte Family, string Table, string Set,
    IReadOnlyList<Nft.Bytecode.Objects.SetElement> Added, IReadOnlyList<Nft.Bytecode.Objects.SetElement> Removed);

/// <summary>A backend refuses a batch. The emulation blames the batch message that created <see cref="RuleHandle"/> (or the chain) when it can.</summary>
public sealed class BackendRefusal : Nft.Netlink.NetlinkException
{
    public byte Family { get; }
    public string? Table { get; }
    public string? Chain { get; }
    public ulong? RuleHandle { get; }
    /// <summary>Index of the offending expression within that rule, or -1: nft underlines that statement.</summary>
    public int ExpressionIndex { get; }
    /// <summary>Why, in a word or two (e.g. "bpf_load", "kernel_placement"): the refusal reason bpfilterd's metrics count.</summary>
    public string Reason { get; }

    public BackendRefusal(int errno, string extack, byte family = 0, string? table = null, string? chain = null, ulong? ruleHandle = null,
        int expressionIndex = -1, string reason = "backend")
        : base(errno, extack)
    {
        Reason = reason;
        Family = family;
        Table = table;
        Chain = chain;
        RuleHandle = ruleHandle;
        ExpressionIndex = expressionIndex;
    }
}

/// <summary>The backend used until enforcement lands: accepts everything, counts nothing.</summary>
public sealed class NullRulesetBackend : IRulesetBackend
{
    public static readonly NullRulesetBackend Instance = new();
    public void Prepare(RulesetChange change) { }
    public void Commit() { }
    public void Abort() { }
    public CounterValue? ReadCounter(CounterRef counter) => null;
    public void ResetCounter(CounterRef counter) { }
}
