using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Kernel;

/// <summary>
/// Turns the caller's records (decoded from nft's requests, from kernel dumps, or built in code)
/// into what a NEW* request may carry: handles, use counts, dump-only attributes and the caller's
/// own batch ids are dropped (a handle on NEWRULE would mean "replace", on NEWCHAIN "rename");
/// everything else keeps its decoded layout.
/// </summary>
internal static class KernelForm
{
    /// <summary>NFT_TABLE_F_PERSIST (6.9+). Ownership flags belong to the emulation's client, not to the daemon's copy.</summary>
    const uint TablePersist = 0x4;

    /// <summary>The name nft gives anonymous sets in a request; the kernel picks the real one.</summary>
    public const string AnonymousSetTemplate = "__set%d";

    /// <summary>
    /// The name an anonymous set is sent with, as nft sends it: a meter's set (anonymous and dynamic, nft's
    /// set_is_meter) by the meter's own name, which the kernel keeps (so its elements can be read back by that name, as
    /// `nft list meter` does), any other by <see cref="AnonymousSetTemplate"/>.
    /// </summary>
    public static string AnonymousName(Set s) =>
        s.SetFlags.HasFlag(NftSetFlags.Anonymous | NftSetFlags.Eval) && s.Name is { } name ? name : AnonymousSetTemplate;

    public static Table Table(Table t) => t with
    {
        Handle = null,
        Use = null,
        Owner = null,
        Flags = t.Flags is { } f ? f & ~((uint)NftTableFlags.Owner | TablePersist) : null,
    };

    public static Chain Chain(Chain c) => c with { Handle = null, Use = null, Counters = null, Id = null };

    /// <param name="replace">per caller's expression index, what the kernel copy runs in its place (null: the expression itself)</param>
    public static Rule Rule(Rule r, Func<string, (string Name, uint Id)?> anonymousSet, Func<int, Expression?>? replace = null) => r with
    {
        Handle = null,
        Position = null,
        Id = null,
        PositionId = null,
        ChainId = null,
        // with a hidden `last` before each expression that may run a limit: how long its bucket has been idle
        Expressions = r.Expressions is { } x ? Replace(x, HiddenLast.Insert(x.Select(e => Expression(e, anonymousSet)).ToList()), replace) : null,
    };

    /// <summary>The kernel copy <paramref name="kernel"/> of <paramref name="caller"/> with the replacements, in the caller's indexes (hidden `last`s stay).</summary>
    static List<Expression> Replace(IReadOnlyList<Expression> caller, List<Expression> kernel, Func<int, Expression?>? replace)
    {
        if (replace == null) return kernel;
        var align = HiddenLast.Align(caller, kernel);
        for (int k = 0; k < kernel.Count; k++)
            if (align[k] is (var i, false) && i >= 0 && replace(i) is { } instead) kernel[k] = instead;
        return kernel;
    }

    /// <summary>References to anonymous sets go by the name and batch id of the set sent just before the rule; named ones by name only.</summary>
    static Expression Expression(Expression e, Func<string, (string Name, uint Id)?> anonymousSet) => e switch
    {
        LookupExpr l => anonymousSet(l.Set) is { } a ? l with { Set = a.Name, SetId = a.Id } : l with { SetId = null },
        // A dump always carries NFTA_DYNSET_TIMEOUT (0: none), but NEWRULE refuses any timeout on a set without
        // the timeout flag (EOPNOTSUPP): nft sends it only when the statement has one.
        DynsetExpr d => (d.Timeout == 0 ? d with { Timeout = null } : d) is var dy && anonymousSet(dy.SetName) is { } a
            ? dy with { SetName = a.Name, SetId = a.Id }
            : dy with { SetId = null },
        ObjRefExpr o when o.IsMap => o.SetName != null && anonymousSet(o.SetName) is { } a
            ? o with { SetName = a.Name, SetId = a.Id }
            : o with { SetId = null },
        ImmediateExpr { Data: VerdictData v } i => i with { Data = Verdict(v) },
        _ => e,
    };

    static VerdictData Verdict(VerdictData v) =>
        v.Verdict.Chain != null && v.Verdict.ChainId != null ? v with { Verdict = v.Verdict with { ChainId = null } } : v;

    public static Set Set(Set s, uint id, bool anonymous) => s with
    {
        Handle = null,
        Id = id,
        Count = null,
        Backend = null,
        Name = anonymous ? AnonymousName(s) : s.Name,
    };

    public static SetElement Element(SetElement e) => e with
    {
        Expiration = null,
        Data = e.Data is VerdictData v ? Verdict(v) : e.Data,
    };

    /// <summary>What DELSETELEM needs to find an element: key, key end, flags.</summary>
    public static SetElement ElementKey(SetElement e) => new() { Key = e.Key, KeyEnd = e.KeyEnd, Flags = e.Flags };

    public static NftObject Object(NftObject o) => o with { Handle = null, Use = null };

    public static Flowtable Flowtable(Flowtable f) => f with { Handle = null, Use = null };

    // ---- fingerprints: what makes two records "the same thing" for the kernel, state (counters) aside ----

    public static byte[] Bytes(object record)
    {
        var w = new NetlinkWriter();
        NftMessage.EncodeAttributes(w, record, WireFormat.Kernel);
        return w.ToArray();
    }

    /// <summary>An expression without its running state (counter values, quota consumption, last-seen time).</summary>
    public static Expression Stateless(Expression e) => e switch
    {
        CounterExpr => new CounterExpr(),
        QuotaExpr q => q with { Consumed = null, Layout = null },
        LastExpr => new LastExpr(),
        _ => e,
    };

    public static bool SameBytes(byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b);
}
