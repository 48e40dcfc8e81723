using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// The elements of sets the backend's packet path writes (<see cref="IRulesetBackend.PacketPathElements"/>), taken
/// as the sets' elements, as the kernel's set holds them: an element the packet path added is there (a batch may
/// delete, flush, get or renew it, and it counts against `size`), one it deleted or that expired is not. A
/// committed element keeps what the batch gave it (comment, timeout) with the packet path's expiry.
/// </summary>
internal static class PacketPathElements
{
    /// <summary><paramref name="snapshot"/> with every packet-written set holding its live elements.</summary>
    public static RulesetSnapshot Refresh(NetnsState ns, RulesetSnapshot snapshot)
    {
        var tables = snapshot.Tables;
        for (int ti = 0; ti < tables.Count; ti++)
        {
            var t = tables[ti];
            var sets = t.Sets;
            for (int si = 0; si < sets.Count; si++)
                if (ns.Backend.PacketPathElements(t.Family, t.Name, sets[si].Name) is { } live)
                    sets = sets.SetItem(si, Merge(ns, sets[si], live, withState: false));
            if (sets != t.Sets) tables = tables.SetItem(ti, t with { Sets = sets });
        }
        return tables == snapshot.Tables ? snapshot : snapshot with { Tables = tables };
    }

    /// <summary>
    /// The set with the live elements (key, own timeout, milliseconds left, the state of the statements the
    /// packet path gave them) in place of its others; catch-all elements stay. A batch's view takes them without
    /// their state (<paramref name="withState"/> false): the lift then sees no statements the control plane gave them.
    /// </summary>
    public static SetRecord Merge(NetnsState ns, SetRecord s, IReadOnlyList<SetElement> live, bool withState = true)
    {
        long now = ns.NowMs();
        var elements = ElementSet.Empty;
        foreach (var c in s.Elements.Where(e => (e.Flags & (uint)NftSetElemFlags.Catchall) != 0)) elements = elements.Add(c);
        foreach (var e in live)
        {
            var key = (e.Key as ValueData)?.Value ?? throw new InvalidOperationException($"set {s.Name}: a live element without a key");
            var id = new ElementKey(key, null, 0);
            long? expires = e.Expiration is ulong left ? now + (long)Math.Min(left, long.MaxValue / 2) : null;
            // the packet path gives a new element the rule's timeout, or the set's (nft_dynset_new)
            var timeout = e.Timeout ?? (s.Elements.TryGetValue(id, out var was) ? was.Timeout : s.Set.Timeout is > 0 ? s.Set.Timeout : null);
            if (s.Elements.TryGetValue(id, out var old))
            {
                var element = e.Timeout is ulong own ? old.Element with { Timeout = Shown(s, own) } : old.Element;
                // an element the packet path added (again) lists the state of the statements it gave it
                if (withState && (e.Expr != null || e.Expressions != null)) element = element with { Expr = e.Expr, Expressions = e.Expressions };
                elements = elements.Add(old with { Element = element, Timeout = timeout, ExpiresAtMs = expires });
                continue;
            }
            elements = elements.Add(new ElementRecord(id, new SetElement
                {
                    Key = new ValueData(key), Timeout = timeout is ulong t ? Shown(s, t) : null,
                    Expr = withState ? e.Expr : null, Expressions = withState ? e.Expressions : null,
                },
                timeout, expires) { InsertSeq = ++ns.ElementSeq });
        }
        return s with { Elements = elements };
    }

    /// <summary>nf_tables_fill_setelem dumps an element's timeout only where it differs from the set's.</summary>
    static ulong? Shown(SetRecord s, ulong timeout) => timeout != (s.Set.Timeout ?? 0) ? timeout : null;
}
