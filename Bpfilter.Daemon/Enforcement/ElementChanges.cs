using Bpfilter.Backend.Enforcement;
using Nft.Engine;
using Nft.Lifter;
using IrSetElement = Bpfilter.Backend.Ir.SetElement;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// A batch's set element deltas as IR element changes, converted by the committed lift's
/// <see cref="SetEncoder"/>s (the same conversion the lift applied to the set's contents). Sets no
/// rule reads change nothing the data plane sees. Null when some element cannot be converted on its
/// own exactly: then the whole ruleset is lifted again.
/// </summary>
internal static class ElementChanges
{
    public static List<SetChange>? Of(LiftResult current, IReadOnlyList<SetDelta> deltas)
    {
        var changes = new List<SetChange>();
        foreach (var d in deltas)
        {
            if (!current.SetEncoders.TryGetValue((d.Family, d.Table, d.Set), out var encoder)) continue;
            var added = Convert(encoder, d.Added);
            var removed = Convert(encoder, d.Removed);
            if (added == null || removed == null) return null;
            if (added.Count + removed.Count > 0) changes.Add(new SetChange(encoder.IrName, added, removed));
        }
        return changes;
    }

    /// <summary>
    /// The deltas of a full commit by IR set name, converted by <paramref name="lift"/>'s encoders, for the sets
    /// programs write from the packet path (plain sets of exact keys: each element converts on its own).
    /// </summary>
    public static Dictionary<string, SetChange> ByIrSet(LiftResult lift, IReadOnlyList<SetDelta> deltas)
    {
        var changes = new Dictionary<string, SetChange>();
        foreach (var d in deltas)
        {
            if (!lift.SetEncoders.TryGetValue((d.Family, d.Table, d.Set), out var encoder)) continue;
            if (Convert(encoder, d.Added) is { } added && Convert(encoder, d.Removed) is { } removed)
                changes[encoder.IrName] = new SetChange(encoder.IrName, added, removed);
        }
        return changes;
    }

    /// <summary>The IR names of the sets the batch deleted and created anew (<see cref="RulesetChange.RecreatedSets"/>) that the lift encodes.</summary>
    public static HashSet<string> Recreated(LiftResult lift, IReadOnlyList<(byte Family, string Table, string Set)> sets)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in sets)
            if (lift.SetEncoders.TryGetValue(s, out var encoder)) names.Add(encoder.IrName);
        return names;
    }

    static List<IrSetElement>? Convert(SetEncoder encoder, IReadOnlyList<Nft.Bytecode.Objects.SetElement> elements)
    {
        var list = new List<IrSetElement>(elements.Count);
        foreach (var e in elements)
        {
            if (encoder.Lift(e) is not { } ir) return null;
            list.Add(ir);
        }
        return list;
    }
}
