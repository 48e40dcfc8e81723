using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Lifter;

using SetElement = Nft.Bytecode.Objects.SetElement;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// What the statements of a set's elements (a counter, a quota) counted and consumed, carried when a commit moves the
/// set between BPF and the kernel's nf_tables (with the chains that look it up). In the kernel's own nf_tables nothing
/// moves: an element keeps its counter and quota as long as it lives, so bpfilterd's listing must too. To the kernel:
/// the elements are sent with BPF's state in their statements (NFTA_SET_ELEM_EXPR(ESSIONS) with the counter's
/// packets and bytes and the quota's consumed bytes, as `counter packets 5 bytes 500` in a file). Back to BPF: the
/// element's counter slot and quota slot are given what the kernel lists, read before the kernel commit takes the set
/// away. An element this batch adds is a new one (as in the kernel) and starts from what the batch gave it.
/// A limit's tokens are not carried: neither side lists them.
/// </summary>
internal static class ElementCarry
{
    /// <summary>A set of a table, as the placement names it.</summary>
    public readonly record struct SetId(byte Family, string Table, string Set);

    /// <summary>
    /// The kernel's tables with the elements of each set in <paramref name="moved"/> (the kernel takes it over from
    /// BPF) preset to what BPF listed: <paramref name="bpfCount"/> and <paramref name="bpfUsed"/> (by statement
    /// index) give BPF's count and consumption beyond what the element was given. <paramref name="tables"/> itself when
    /// no set moves.
    /// </summary>
    public static IReadOnlyList<SourceTable> ToKernel(IReadOnlyList<SourceTable> tables, Func<SetId, bool> moved, Func<SetId, SetElement, bool> added,
        Func<ElementCounterRef, CounterValue?> bpfCount, Func<ElementCounterRef, int, ulong?> bpfUsed)
    {
        if (!tables.Any(t => t.Sets.Any(s => moved(new SetId(t.Family, t.Name, s.Name))))) return tables;
        return tables.Select(t => t with
        {
            Sets = t.Sets.Select(s =>
            {
                var id = new SetId(t.Family, t.Name, s.Name);
                if (!moved(id)) return s;
                return s with
                {
                    Elements = s.Elements.Select(e => added(id, e) ? e : WithState(e, Ref(id, e), (x, i, at) => x switch
                    {
                        CounterExpr c when bpfCount(at) is { } live => c with { Packets = (c.Packets ?? 0) + live.Packets, Bytes = (c.Bytes ?? 0) + live.Bytes },
                        // nft_quota_do_init refuses more consumed than the quota; the kernel's dump shows no more either
                        QuotaExpr q when bpfUsed(at, i) is { } used => q with { Consumed = Math.Min(q.Bytes, (q.Consumed ?? 0) + used) },
                        _ => x,
                    })).ToList(),
                };
            }).ToList(),
        }).ToList();
    }

    /// <summary>
    /// The counter and quota slots of the elements of each set in <paramref name="moved"/> (BPF takes it over from the
    /// kernel) with what the kernel listed for them (<paramref name="kernelElements"/>, read before the kernel
    /// commit) beyond what the element was given: the listing adds what it was given to BPF's count.
    /// </summary>
    public static (IReadOnlyList<CounterSeed> Counters, IReadOnlyList<QuotaSeed> Quotas) ToBpf(IReadOnlyList<SourceTable> tables, Func<SetId, bool> moved,
        Func<SetId, SetElement, bool> added, Func<SetId, IReadOnlyList<SetElement>?> kernelElements, LiftResult lift)
    {
        var counters = new List<CounterSeed>();
        var quotas = new List<QuotaSeed>();
        foreach (var t in tables)
            foreach (var s in t.Sets)
            {
                var id = new SetId(t.Family, t.Name, s.Name);
                if (!moved(id) || kernelElements(id) is not { } listed) continue;
                var byKey = new Dictionary<string, SetElement>();
                foreach (var k in listed) byKey.TryAdd(KeyOf(k), k);
                foreach (var e in s.Elements)
                {
                    if (added(id, e) || !byKey.TryGetValue(KeyOf(e), out var k)) continue;
                    var given = Statements(e);
                    var now = Statements(k);
                    for (int i = 0; i < Math.Min(given.Count, now.Count); i++)
                        switch (given[i], now[i])
                        {
                            case (CounterExpr c, CounterExpr kc) when lift.Counters.TryGetValue(CounterKey.Element(t.Family, t.Name, s.Name, e.Key, e.KeyEnd), out var slot):
                                counters.Add(new CounterSeed(slot, new CounterValue(Less(kc.Packets, c.Packets), Less(kc.Bytes, c.Bytes)), false));
                                break;
                            case (QuotaExpr q, QuotaExpr kq) when lift.Quotas.TryGetValue(StatefulKey.Element(t.Family, t.Name, s.Name, e.Key, e.KeyEnd, i), out var slot):
                                quotas.Add(new QuotaSeed(slot, Less(kq.Consumed, q.Consumed)));
                                break;
                        }
                }
            }
        return (counters, quotas);
    }

    /// <summary>
    /// The elements a set BPF's packet path writes holds as the kernel takes it over, as the kernel's own set would
    /// have gone on holding them: those BPF holds (<paramref name="live"/>: milliseconds left, statements with what they
    /// counted), with what the control plane gave each; elements the batch adds start anew and those it removes are gone.
    /// A committed element BPF no longer holds expired or was deleted by a packet.
    /// </summary>
    public static IReadOnlyList<SetElement> Live(SourceSet set, IReadOnlyList<SetElement> live, IReadOnlyList<SetElement> added, IReadOnlyList<SetElement> removed)
    {
        var fresh = added.Select(KeyOf).ToHashSet();
        var gone = removed.Select(KeyOf).ToHashSet();
        var held = new Dictionary<string, SetElement>();
        foreach (var e in live)
            if (e.Key != null) held.TryAdd(KeyOf(e), e);
        var elements = new List<SetElement>();
        foreach (var e in set.Elements)
        {
            var key = KeyOf(e);
            // a catch-all element or one the batch adds: the kernel gives it its full timeout
            if (e.Key == null || fresh.Contains(key)) elements.Add(e with { Expiration = null });
            else if (held.Remove(key, out var h))
                elements.Add(e with
                {
                    Expiration = h.Expiration, Data = h.Data ?? e.Data,
                    Expr = h.Expr ?? (h.Expressions is { Count: > 0 } ? null : e.Expr), Expressions = h.Expressions ?? (h.Expr != null ? null : e.Expressions),
                });
        }
        foreach (var (key, h) in held)
            if (!gone.Contains(key) && !fresh.Contains(key))
                elements.Add(h with { Timeout = h.Timeout == set.Set.Timeout ? null : h.Timeout });
        return elements;
    }

    /// <summary>
    /// The elements the kernel's packet path added to a set BPF's packet path takes over (<paramref name="listed"/>: the
    /// kernel's set, read before the kernel commit takes it away), as BPF's map starts with them: each with what it has
    /// left (<paramref name="now"/> on in jiffies of <paramref name="tickMs"/>), its own timeout and its counter's and
    /// quota's state. The set's committed elements are compiled into the map; the batch's additions and removals win.
    /// <paramref name="refused"/> is given each element that cannot be carried (a limit: neither side lists its tokens,
    /// and BPF's bucket map has none for it), with why.
    /// </summary>
    public static IReadOnlyList<PacketPathSeed> ToBpfPacketPath(SourceSet set, IReadOnlyList<SetElement> listed, IReadOnlyList<SetElement> added,
        IReadOnlyList<SetElement> removed, SetEncoder encoder, ulong now, ulong tickMs, Action<SetElement, string> refused)
    {
        var skip = set.Elements.Concat(added).Concat(removed).Select(KeyOf).ToHashSet();
        var seeds = new List<PacketPathSeed>();
        foreach (var k in listed)
        {
            if (k.Key == null || skip.Contains(KeyOf(k))) continue;
            var state = new List<PacketElementState>();
            foreach (var x in Statements(k))
                if (x is CounterExpr c) state.Add(new PacketElementState(new CounterStatement(0), c.Packets ?? 0, c.Bytes ?? 0));
                else if (x is QuotaExpr q) state.Add(new PacketElementState(new QuotaStatement(q.Bytes, ((q.Flags ?? 0) & QuotaExpr.NFT_QUOTA_F_INV) != 0, 0), 0, q.Consumed ?? 0));
            if (state.Count < Statements(k).Count)
            {
                refused(k, "a statement of it (a limit) has state BPF cannot be given");
                continue;
            }
            if (encoder.Lift(k with { Expr = null, Expressions = null, Expiration = null, Timeout = null }) is not { } ir)
            {
                refused(k, "its key does not convert to the set's map key");
                continue;
            }
            // nf_jiffies64_to_msecs rounded the time left down: the whole ticks left, at least one
            ulong? expires = k.Expiration is ulong left ? now + Math.Max(1, left / tickMs) : null;
            var timeout = k.Timeout ?? (k.Expiration != null ? set.Set.Timeout : null);
            seeds.Add(new PacketPathSeed(ir with { Expires = expires }, timeout / tickMs, state));
        }
        return seeds;
    }

    /// <summary>The element's statements: its own, which the emulation cloned from the set's when it was added.</summary>
    static IReadOnlyList<Expression> Statements(SetElement e) => e.Expr is { } x ? [x] : e.Expressions ?? [];

    static SetElement WithState(SetElement e, ElementCounterRef at, Func<Expression, int, ElementCounterRef, Expression> state) =>
        e.Expr is { } x ? e with { Expr = state(x, 0, at) }
        : e.Expressions is { Count: > 0 } xs ? e with { Expressions = xs.Select((y, i) => state(y, i, at)).ToList() }
        : e;

    static ElementCounterRef Ref(SetId s, SetElement e) =>
        new(s.Family, s.Table, s.Set, (e.Key as ValueData)?.Value ?? [], (e.KeyEnd as ValueData)?.Value);

    static string KeyOf(SetElement e) => CounterKey.Element(0, "", "", e.Key, e.KeyEnd).Object ?? "";

    static ulong Less(ulong? a, ulong? b) => (a ?? 0) >= (b ?? 0) ? (a ?? 0) - (b ?? 0) : 0;
}
