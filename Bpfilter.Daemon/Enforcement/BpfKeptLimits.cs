using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The named limits BPF keeps while no rule names them. nf_tables keeps a limit object's bucket while its table holds it,
/// named or not, and a rule naming it again goes on from there; so a limit object whose slot BPF holds (its bucket in the
/// shared map, or one an earlier daemon left in the pinned map) keeps slot and bucket while the proposed ruleset's table holds
/// the object, unless the batch deleted and added it (or its table) anew: that one starts full, as the kernel's new object
/// does. `delete limit` takes it out of the table, and so frees the slot.
/// </summary>
static class BpfKeptLimits
{
    /// <summary>The candidates: the limit objects of <paramref name="tables"/> no rule names that have a slot and were not renewed (see <see cref="Retain"/>).</summary>
    public static Dictionary<StatefulKey, LimitStatement> Of(IReadOnlyList<SourceTable> tables, LiftResult lift, RulesetChange change,
        SlotTable<StatefulKey> slots)
    {
        var kept = new Dictionary<StatefulKey, LimitStatement>();
        foreach (var t in tables)
        {
            if (change.RecreatedTables.Contains((t.Family, t.Name))) continue;
            foreach (var o in t.Objects ?? [])
            {
                if (o.Name == null || o.Data is not LimitExpr l) continue;
                var key = StatefulKey.Named(t.Family, t.Name, o.Name);
                if (lift.Limits.ContainsKey(key) || !slots.TryGet(key, out var slot)
                    || change.RecreatedObjects.Contains((t.Family, t.Name, o.Name, (uint)NftObjectType.Limit)))
                    continue;
                // a limit BPF spent lifted before: a refusal here would be a change of the object, which nf_tables has no update for
                if (LimitStatements.TryLift(l, slot) is { } limit) kept[key] = limit;
            }
        }
        return kept;
    }

    /// <summary>
    /// Keeps of <paramref name="kept"/> those whose bucket BPF holds (<paramref name="holds"/>) and the kernel's copy
    /// (<paramref name="kernelTables"/>) does not: one the kernel holds is the kernel's (a chain there names it, or it keeps it unnamed).
    /// </summary>
    public static void Retain(Dictionary<StatefulKey, LimitStatement> kept, Func<ulong, bool> holds, IEnumerable<SourceTable> kernelTables)
    {
        if (kept.Count == 0) return;
        foreach (var (key, limit) in kept.ToList())
            if (!holds(limit.StateSlot)) kept.Remove(key);
        foreach (var (family, table, name) in Placement.KernelKeptLimits.HeldBy(kernelTables))
            kept.Remove(StatefulKey.Named(family, table, name));
    }
}
