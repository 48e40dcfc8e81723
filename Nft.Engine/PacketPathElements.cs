using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// The elements of sets the data plane's packet path writes (<see cref="IRulesetBackend.PacketPathElements"/>: BPF's
/// maps or the kernel's own sets), taken as the sets' elements, as the kernel's set holds them: an element the packet
/// path added is there (a batch may delete, flush, get or renew it, and it counts against `size`), one it deleted or
/// that expired is not. A committed element keeps what the batch gave it (comment, timeout) with the packet path's
/// expiry and a map's data as the data plane holds it, and the data plane's statements when it reports them (the kernel's element counters).
/// </summary>
internal static class PacketPathElements
{
    /// <summary>
    /// The set with the live elements (key, own timeout, milliseconds left, the state of the statements the
    /// packet path gave them) in place of its others; committed catch-all elements stay unless the data plane lists
    /// its own. A batch's view (<paramref name="withState"/> false) takes the state only of statements the control
    /// plane gave an element: the lift then never mistakes statements the packet path gave for the control plane's.
    /// </summary>
    public static SetRecord Merge(NetnsState ns, SetRecord s, IReadOnlyList<SetElement> live, bool withState = true)
    {
        long now = ns.NowMs();
        var elements = ElementSet.Empty;
        var catchAll = s.Elements.Where(IsCatchAll).ToList();
        if (!live.Any(e => ((e.Flags ?? 0) & (uint)NftSetElemFlags.Catchall) != 0))
            foreach (var c in catchAll) elements = elements.Add(c);
        foreach (var e in live)
        {
            uint flags = e.Flags ?? 0;
            ElementKey id;
            if ((flags & (uint)NftSetElemFlags.Catchall) != 0) id = catchAll.Count > 0 ? catchAll[0].Id : new ElementKey([], null, flags);
            else id = new ElementKey((e.Key as ValueData)?.Value ?? throw new InvalidOperationException($"set {s.Name}: a live element without a key"),
                (e.KeyEnd as ValueData)?.Value, flags);
            long? expires = e.Expiration is ulong left ? now + (long)Math.Min(left, long.MaxValue / 2) : null;
            // the packet path gives a new element the rule's timeout, or the set's (nft_dynset_new)
            var timeout = e.Timeout ?? (s.Elements.TryGetValue(id, out var was) ? was.Timeout : s.Set.Timeout is > 0 ? s.Set.Timeout : null);
            if (s.Elements.TryGetValue(id, out var old))
            {
                var element = e.Timeout is ulong own ? old.Element with { Timeout = Shown(s, own) } : old.Element;
                // a map's data as the data plane holds it: the committed element's, or a packet's that added the key again
                if (e.Data != null) element = element with { Data = e.Data };
                // the data plane's statements carry what it counted (the kernel dumps an element's counter with its total);
                // a batch's view takes the state of statements the control plane gave, not of those the packet path gave
                if ((e.Expr != null || e.Expressions is { Count: > 0 })
                    && (withState || old.Element.Expr != null || old.Element.Expressions is { Count: > 0 })) element = element with { Expr = e.Expr, Expressions = e.Expressions };
                elements = elements.Add(old with { Element = element, Timeout = timeout, ExpiresAtMs = expires });
                continue;
            }
            elements = elements.Add(new ElementRecord(id, e with
                {
                    Expiration = null, Timeout = timeout is ulong t ? Shown(s, t) : null,
                    Expr = withState ? e.Expr : null, Expressions = withState ? e.Expressions : null,
                },
                timeout, expires) { InsertSeq = ++ns.ElementSeq });
        }
        return s with { Elements = elements };
    }

    static bool IsCatchAll(ElementRecord e) => (e.Flags & (uint)NftSetElemFlags.Catchall) != 0;

    /// <summary>nf_tables_fill_setelem dumps an element's timeout only where it differs from the set's.</summary>
    static ulong? Shown(SetRecord s, ulong timeout) => timeout != (s.Set.Timeout ?? 0) ? timeout : null;
}
