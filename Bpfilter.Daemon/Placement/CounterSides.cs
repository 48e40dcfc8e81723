using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Which side counts a counter (a rule's counter expression or a named counter) under one placement: a BPF
/// counter slot, the kernel's nf_tables, or both (a regular chain reached from base chains on both sides). A
/// named object is in BPF only when no chain placed in the kernel uses it (see PlacementPlan): then the
/// kernel's copy of the object counts nothing.
/// </summary>
internal static class CounterSides
{
    /// <summary>The BPF counter slot that counts <paramref name="c"/> under <paramref name="plan"/>, or null.</summary>
    public static ulong? BpfSlot(LiftResult lift, PlacementPlan plan, CounterRef c)
    {
        if (c.ObjectName is { } name)
            return c.ObjectType == NftObjectType.Counter && lift.Counters.TryGetValue(CounterKey.Named(c.Family, c.Table, name), out var id) && NamedInBpf(lift, plan, c, NftObjectType.Counter) ? id : null;
        if (c.Chain == null || !plan.BpfChains.Contains(new ChainId(c.Family, c.Table, c.Chain))) return null;
        return RuleSlot(lift, c);
    }

    /// <summary>
    /// The slot the lift gave the rule's counter expression <paramref name="c"/> (chain set, no object name): a rule's second or
    /// later counter has a slot of its own, its first the rule's key (<see cref="CounterKey.OfRule"/>).
    /// </summary>
    public static ulong? RuleSlot(LiftResult lift, CounterRef c)
    {
        var rule = new CounterKey(c.Family, c.Table, c.Chain!, c.RuleHandle);
        return lift.Counters.TryGetValue(rule with { ExpressionIndex = c.ExpressionIndex }, out var slot) || lift.Counters.TryGetValue(rule, out slot) ? slot : null;
    }

    /// <summary>
    /// Where <paramref name="c"/> is counted under <paramref name="plan"/>: its BPF slot, and whether the kernel's nf_tables counts it
    /// (a named object: when its kernel table holds it, unless BPF does; a named counter's slot is looked up by type, so a quota by the same name has none).
    /// </summary>
    public static (ulong? Slot, bool Kernel) Of(LiftResult lift, PlacementPlan plan, CounterRef c)
    {
        var slot = BpfSlot(lift, plan, c);
        return (slot, c.ObjectName != null
            ? slot == null && KernelHolds(plan, c)
            : c.Chain != null && plan.KernelChains.Contains(new ChainId(c.Family, c.Table, c.Chain)));
    }

    /// <summary>
    /// Where a quota <paramref name="c"/> consumes under <paramref name="plan"/>: its BPF quota slot, and whether the
    /// kernel's nf_tables does. A rule's quota expression goes with its chain; a named quota is in BPF when a chain
    /// running there names it, else in the kernel when its kernel table holds it (as a named counter, see <see cref="Of"/>).
    /// </summary>
    public static (ulong? Slot, bool Kernel) Quota(LiftResult lift, PlacementPlan plan, CounterRef c)
    {
        if (c.ObjectName is { } name)
        {
            if (c.ObjectType != NftObjectType.Quota) return (null, false);
            ulong? named = lift.Quotas.TryGetValue(StatefulKey.Named(c.Family, c.Table, name), out var n) && NamedInBpf(lift, plan, c, NftObjectType.Quota) ? n : null;
            return (named, named == null && KernelHolds(plan, c));
        }
        if (c.Chain == null) return (null, false);
        var chain = new ChainId(c.Family, c.Table, c.Chain);
        ulong? slot = plan.BpfChains.Contains(chain) && lift.Quotas.TryGetValue(new StatefulKey(c.Family, c.Table, c.Chain, c.RuleHandle, c.ExpressionIndex, null), out var q) ? q : null;
        return (slot, plan.KernelChains.Contains(chain));
    }

    /// <summary>
    /// Whether the kernel's copy of <paramref name="c"/>'s table holds the named object: a chain placed there names it. A
    /// table in the kernel holds only the objects its chains name (KernelSubset): one no chain names is on neither side
    /// (<see cref="UnplacedObjects"/>).
    /// </summary>
    static bool KernelHolds(PlacementPlan plan, CounterRef c) => plan.KernelTables.Any(t => t.Family == c.Family && t.Name == c.Table
        && (t.Objects ?? []).Any(o => KernelObjectKey.Of(t, o) == KernelObjectKey.Of(c)));

    /// <summary>
    /// A rule of a chain running in BPF names the object <paramref name="c"/> of this type, itself or through an
    /// object map (which may name every object of its type: the lift gave each of them its slot).
    /// </summary>
    public static bool NamedInBpf(LiftResult lift, PlacementPlan plan, CounterRef c, NftObjectType type)
    {
        var name = c.ObjectName!;
        ulong? slot = type switch
        {
            NftObjectType.Counter => lift.Counters.TryGetValue(CounterKey.Named(c.Family, c.Table, name), out var id) ? id : null,
            NftObjectType.Quota => lift.Quotas.TryGetValue(StatefulKey.Named(c.Family, c.Table, name), out var q) ? q : null,
            _ => lift.Limits.TryGetValue(StatefulKey.Named(c.Family, c.Table, name), out var l) ? l : null,
        };
        return lift.Listing.Any(r => r.Family == c.Family && r.Table == c.Table && plan.BpfChains.Contains(new ChainId(r.Family, r.Table, r.Chain))
            && (r.Source.Any(e => e is ObjRefExpr { IsMap: false, ImmName: var n, ImmType: var t } && n == name && t == (uint)type)
                || slot != null && r.Lifted.Statements.OfType<ObjectMapStatement>().SelectMany(m => m.Objects).Any(o => SlotOf(o, type) == slot)));
    }

    /// <summary>
    /// <see cref="Of"/> of a named counter and <see cref="Quota"/> of a named quota, for every object of a ruleset at once: the
    /// objects chains running in BPF name (as <see cref="NamedInBpf"/>) are gathered in one walk of the listing, when first
    /// asked, where NamedInBpf walks it for each object.
    /// </summary>
    public static CounterCarry.Sides Named(LiftResult lift, PlacementPlan plan)
    {
        HashSet<(byte, string, uint, string)>? named = null;
        HashSet<(NftObjectType, ulong)>? mapped = null;
        return c =>
        {
            if (c.ObjectName is not { } name || c.ObjectType is not (NftObjectType.Counter or NftObjectType.Quota)) return (null, false);
            if (named == null)
            {
                (named, mapped) = ([], []);
                foreach (var r in lift.Listing)
                {
                    if (!plan.BpfChains.Contains(new ChainId(r.Family, r.Table, r.Chain))) continue;
                    foreach (var e in r.Source)
                        if (e is ObjRefExpr { IsMap: false, ImmName: { } n, ImmType: { } t }) named.Add((r.Family, r.Table, t, n));
                    foreach (var m in r.Lifted.Statements.OfType<ObjectMapStatement>())
                        foreach (var o in m.Objects)
                            if (o is CounterStatement x) mapped.Add((NftObjectType.Counter, x.Id));
                            else if (o is QuotaStatement y) mapped.Add((NftObjectType.Quota, y.StateSlot));
                }
            }
            ulong? slot = c.ObjectType == NftObjectType.Counter
                ? lift.Counters.TryGetValue(CounterKey.Named(c.Family, c.Table, name), out var id) ? id : null
                : lift.Quotas.TryGetValue(StatefulKey.Named(c.Family, c.Table, name), out var q) ? q : null;
            if (slot is { } s && !named.Contains((c.Family, c.Table, (uint)c.ObjectType, name)) && !mapped!.Contains((c.ObjectType, s))) slot = null;
            return (slot, slot == null && KernelHolds(plan, c));
        };
    }

    static ulong? SlotOf(Statement s, NftObjectType type) => (s, type) switch
    {
        (CounterStatement x, NftObjectType.Counter) => x.Id,
        (QuotaStatement x, NftObjectType.Quota) => x.StateSlot,
        (LimitStatement x, NftObjectType.Limit) => x.StateSlot,
        _ => null,
    };
}
