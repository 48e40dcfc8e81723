using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// The named counters and quotas BPF takes over from the kernel in one transaction, kept in the kernel commit that takes
/// their rules away (<see cref="With"/>): nf_tables' DELOBJ notification carries no object state (Linux 6.18), so an
/// object deleted in that commit could only be read before it, and what the kernel's copy counted between that read and
/// the commit would be lost. Kept, no rule names it after the commit and it stops changing: the daemon reads it once
/// the commit is live (GETOBJ), gives BPF the difference, and deletes it in a second kernel transaction
/// (<see cref="Without"/>). Until then the committed placement counts it in the kernel, whose listing is final.
/// </summary>
internal sealed record LingeringObjects(IReadOnlyList<(Table Table, NftObject Object)> Objects)
{
    public static readonly LingeringObjects None = new([]);

    public bool Any => Objects.Count > 0;

    /// <summary>Each object as a counter reference (its type set).</summary>
    public IEnumerable<CounterRef> Refs => Objects.Select(o => CounterRef.Named(o.Table.Family, o.Table.Name ?? "", o.Object.Name!, o.Object.Type));

    /// <summary>
    /// The named counters and quotas of <paramref name="placed"/> (the kernel's tables before the commit) that the committed
    /// placement counts in the kernel (<paramref name="before"/>), that <paramref name="desired"/> does not hold, that the
    /// transaction does not renew and that BPF counts after it (<paramref name="after"/>).
    /// </summary>
    public static LingeringObjects Of(IReadOnlyList<SourceTable> placed, IReadOnlyList<SourceTable> desired, Func<CounterRef, bool> renewed,
        Func<CounterRef, (ulong? Slot, bool Kernel)> before, Func<CounterRef, (ulong? Slot, bool Kernel)> after)
    {
        var held = KernelObjectKey.HeldBy(desired);
        var kept = new List<(Table, NftObject)>();
        foreach (var t in placed)
            foreach (var o in t.Objects ?? [])
            {
                if (o.ObjectType is not (NftObjectType.Counter or NftObjectType.Quota) || o.Name == null || held.Contains(KernelObjectKey.Of(t, o))) continue;
                var c = CounterRef.Named(t.Family, t.Name, o.Name, o.Type);
                if (!renewed(c) && before(c) is { Slot: null, Kernel: true } && after(c) is { Slot: not null, Kernel: false }) kept.Add((t.Table, o));
            }
        return new LingeringObjects(kept);
    }

    /// <summary><paramref name="tables"/> with the objects kept: in their table, or in a table of their own that holds nothing else.</summary>
    public IReadOnlyList<SourceTable> With(IReadOnlyList<SourceTable> tables)
    {
        if (!Any) return tables;
        var result = tables.ToList();
        foreach (var g in Objects.GroupBy(o => (o.Table.Family, o.Table.Name)))
        {
            var i = result.FindIndex(t => t.Family == g.Key.Family && t.Name == g.Key.Name);
            if (i >= 0) result[i] = result[i] with { Objects = [.. result[i].Objects ?? [], .. g.Select(o => o.Object)] };
            else result.Add(new SourceTable(g.First().Table, [], [], [.. g.Select(o => o.Object)]));
        }
        return result;
    }

    /// <summary>
    /// <paramref name="placed"/> (the kernel's tables once the commit is live) without the objects kept, and without a table
    /// that held only them (none of <paramref name="planned"/>, the placement's own tables): the second kernel transaction.
    /// </summary>
    public IReadOnlyList<SourceTable> Without(IReadOnlyList<SourceTable> placed, IReadOnlyList<SourceTable> planned)
    {
        var kept = Objects.Select(o => new KernelObjectKey(o.Table.Family, o.Table.Name ?? "", o.Object.ObjectType, o.Object.Name!)).ToHashSet();
        var own = planned.Select(t => (t.Family, t.Name)).ToHashSet();
        return placed
            .Select(t => t with { Objects = t.Objects?.Where(o => !kept.Contains(KernelObjectKey.Of(t, o))).ToList() })
            .Where(t => own.Contains((t.Family, t.Name)))
            .ToList();
    }

    /// <summary>
    /// Whether every packet the object <paramref name="c"/> counts (a counter) or consumes while not over (a quota) is
    /// dropped: each rule of <paramref name="sources"/> that names it is followed by a drop verdict, no object map names
    /// objects of its type, and a quota is not `over`. Then a copy and a program that run one after the other on a packet
    /// never both count it (EnforcingBackend.Early.cs's rule).
    /// </summary>
    public static bool Drops(IReadOnlyList<SourceTable> sources, CounterRef c)
    {
        if (sources.FirstOrDefault(t => t.Family == c.Family && t.Name == c.Table) is not { } table) return false;
        if (c.ObjectType == NftObjectType.Quota
            && (table.Objects?.FirstOrDefault(o => o.ObjectType == NftObjectType.Quota && o.Name == c.ObjectName)?.Data is not QuotaExpr q
                || ((q.Flags ?? 0) & QuotaExpr.NFT_QUOTA_F_INV) != 0)) return false;
        bool named = false;
        foreach (var exprs in table.Chains.SelectMany(ch => ch.Rules).Select(r => r.Expressions ?? []))
            for (int i = 0; i < exprs.Count; i++)
                switch (exprs[i])
                {
                    case ObjRefExpr { IsMap: true } m when table.FindSet(m.SetName ?? "")?.Set.ObjType is not { } t || t == (uint)c.ObjectType:
                        return false;
                    case ObjRefExpr { IsMap: false } o when o.ImmName == c.ObjectName && o.ImmType == (uint)c.ObjectType:
                        if (!(i + 1 < exprs.Count && exprs[i + 1] is ImmediateExpr { Verdict.Code: Verdict.Drop })) return false;
                        named = true;
                        break;
                }
        return named;
    }
}
