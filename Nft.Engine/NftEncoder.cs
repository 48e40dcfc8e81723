using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// Writes tables, chains, rules, sets, elements and objects as the kernel's nf_tables_fill_*_info
/// functions do: same attributes, same order, nests without NLA_F_NESTED.
/// </summary>
internal sealed class NftEncoder
{
    readonly IRulesetBackend _backend;
    readonly Func<long> _nowMs;

    public NftEncoder(IRulesetBackend backend, Func<long> nowMs)
    {
        _backend = backend;
        _nowMs = nowMs;
    }

    public readonly record struct Header(byte Msg, NlmFlags Flags, uint Seq, uint PortId, ushort ResId);

    public static int TableUse(TableRecord t)
    {
        int n = t.Chains.Count + t.Objects.Count;
        foreach (var s in t.Sets) if (!s.IsAnonymous) n++;
        return n;
    }

    /// <summary>nf_tables_fill_table_info: a DELTABLE carries name, use and handle only.</summary>
    public void Table(NetlinkWriter b, Header h, TableRecord t)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var table = t.Table with { Use = (uint)TableUse(t) };
        if (h.Msg is (byte)NftMsgType.DelTable or (byte)NftMsgType.DestroyTable)
            table = table with { Flags = null, Owner = null, UserData = null };
        else
            table = table with { Flags = t.Flags & (uint)NftTableFlags.Mask, Owner = t.IsOwned ? table.Owner : null };
        table.Encode(b, WireFormat.Kernel);
        b.EndMessage(m);
    }

    /// <summary>
    /// nf_tables_fill_chain_info: a DELCHAIN carries table, name and handle only; flags only when set;
    /// netdev hooks list their devices and name the device again when there is exactly one.
    /// </summary>
    public void Chain(NetlinkWriter b, Header h, TableRecord t, ChainRecord c, uint use)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var chain = c.Chain with { Family = t.Family, Table = t.Name };
        if (h.Msg is (byte)NftMsgType.DelChain or (byte)NftMsgType.DestroyChain)
            chain = new Chain { Family = t.Family, Table = t.Name, Name = c.Name, Handle = c.Handle };
        else
            chain = chain with
            {
                Hook = chain.Hook is { Devices: [var only] } hk ? hk with { Device = only } : chain.Hook,
                Flags = c.Flags != 0 ? c.Flags : null,
                Use = use,
            };
        chain.Encode(b, WireFormat.Kernel);
        b.EndMessage(m);
    }

    public static bool IsNetdevHook(byte family, uint hook) =>
        family == NfProto.Netdev || (family == NfProto.Inet && hook == 5 /* NF_INET_INGRESS */);

    public void Rule(NetlinkWriter b, Header h, TableRecord t, ChainRecord c, RuleRecord r, ulong? position)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var rule = r.Rule with { Family = t.Family, Table = t.Name, Chain = c.Name, Position = position, Expressions = DynsetStatements.Dumped(t, WithCounters(t, c, r)) };
        rule.Encode(b, WireFormat.Kernel);
        b.EndMessage(m);
    }

    /// <summary>The rule's expressions with the totals of its counters and quotas filled in (emulated cell plus data plane).</summary>
    IReadOnlyList<Expression> WithCounters(TableRecord t, ChainRecord c, RuleRecord r)
    {
        var exprs = r.Expressions;
        Expression[]? filled = null;
        for (int i = 0; i < exprs.Count; i++)
        {
            if (r.Counters[i] is not { } cell) continue;
            var live = _backend.ReadCounter(new CounterRef(t.Family, t.Name, c.Name, r.Handle, i, null));
            filled ??= exprs.ToArray();
            filled[i] = WithTotals(exprs[i], cell, live);
        }
        return filled ?? exprs;
    }

    static Expression WithTotals(Expression e, CounterCell cell, CounterValue? live)
    {
        var total = cell.Plus(live);
        return e switch
        {
            CounterExpr => new CounterExpr(total.Bytes, total.Packets),
            QuotaExpr q => q.Dumped(total.Bytes),
            _ => e,
        };
    }

    /// <summary>
    /// nf_tables_fill_set: a DELSET carries table, name and handle only; flags, timeout, gc interval and
    /// policy only when non-zero; data type and length for maps, the object type for object maps; the
    /// description always (its size only when non-zero), then the element count and the statements.
    /// </summary>
    public void Set(NetlinkWriter b, Header h, TableRecord t, SetRecord s)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var set = h.Msg is (byte)NftMsgType.DelSet or (byte)NftMsgType.DestroySet
            ? new Set { Family = t.Family, Table = t.Name, Name = s.Name, Handle = s.Handle }
            : s.Set with
            {
                Family = t.Family,
                Table = t.Name,
                Flags = s.Flags != 0 ? s.Flags : null,
                DataType = s.IsMap ? s.Set.DataType ?? 0 : null,
                DataLen = s.IsMap ? s.Set.DataLen ?? 0 : null,
                ObjType = s.IsObjectMap ? s.Set.ObjType ?? 0 : null,
                Timeout = s.Set.Timeout is not 0 ? s.Set.Timeout : null,
                GcInterval = s.Set.GcInterval is not 0 ? s.Set.GcInterval : null,
                Policy = s.Set.Policy is not 0 ? s.Set.Policy : null,
                Desc = new SetDesc(s.DescSize is not 0 ? s.DescSize : null, s.ConcatFieldLens),
                Count = (uint)s.Elements.Countable,
            };
        set.Encode(b, WireFormat.Kernel);
        b.EndMessage(m);
    }

    /// <summary>Opens a NEWSETELEM message and its NFTA_SET_ELEM_LIST_ELEMENTS nest; returns both starts.</summary>
    public (NetlinkWriter.Token Msg, NetlinkWriter.Token List) BeginElements(NetlinkWriter b, Header h, TableRecord t, SetRecord s)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        b.PutString(NftaSetElemList.Table, t.Name);
        b.PutString(NftaSetElemList.Set, s.Name);
        return (m, b.BeginNestedRaw(NftaSetElemList.Elements));
    }

    public void EndElements(NetlinkWriter b, (NetlinkWriter.Token Msg, NetlinkWriter.Token List) tok)
    {
        b.EndNested(tok.List);
        b.EndMessage(tok.Msg);
    }

    public void Element(NetlinkWriter b, ElementRecord e) => Encode(b, e, e.Element);

    /// <summary>An element as a dump or GETSETELEM shows it: its counter and quota with what the data plane counted added.</summary>
    public void Element(NetlinkWriter b, TableRecord t, SetRecord s, ElementRecord e) => Encode(b, e, WithElementState(t, s, e));

    /// <summary>An element with its expressions as read earlier (<see cref="WithLiveState"/>).</summary>
    public void Element(NetlinkWriter b, ElementRecord e, SetElement shown) => Encode(b, e, shown);

    /// <summary>The element's statements with what the data plane counted and consumed so far added.</summary>
    public SetElement WithLiveState(TableRecord t, SetRecord s, ElementRecord e) => WithElementState(t, s, e);

    void Encode(NetlinkWriter b, ElementRecord e, SetElement el)
    {
        if (e.ExpiresAtMs is long exp) el = el with { Expiration = (ulong)Math.Max(0, exp - _nowMs()) };
        el.Encode(b, NftaList.Elem, WireFormat.Kernel);
    }

    /// <summary>
    /// The element's statements (at most two) with the data plane's state: a counter plus what it counted, a
    /// quota's `used` plus what it consumed (shown as nft_quota_do_dump shows a rule's); a limit has no state to show.
    /// </summary>
    SetElement WithElementState(TableRecord t, SetRecord s, ElementRecord e)
    {
        var el = e.Element;
        if (el.Expr is null && el.Expressions is not { Count: > 0 }) return el;
        var element = new ElementCounterRef(t.Family, t.Name, s.Name, e.Key, e.Id.KeyEnd);
        Expression Add(Expression x, int i) => x switch
        {
            CounterExpr c when _backend.ReadElementCounter(element) is { } live => new CounterExpr((c.Bytes ?? 0) + live.Bytes, (c.Packets ?? 0) + live.Packets),
            QuotaExpr q when _backend.ReadElementQuota(element, i) is { } used =>
                WithTotals(q, new CounterCell(0, q.Consumed ?? 0), new CounterValue(0, used)),
            _ => x,
        };
        return el.Expr != null ? el with { Expr = Add(el.Expr, 0) } : el with { Expressions = el.Expressions!.Select(Add).ToList() };
    }

    /// <summary>nf_tables_fill_obj_info: a DELOBJ carries table, name, type and handle only; state with the totals counted so far.</summary>
    public void Object(NetlinkWriter b, Header h, TableRecord t, ObjectRecord o, uint use)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var obj = o.Object with { Family = t.Family, Table = t.Name };
        if (h.Msg is (byte)NftMsgType.DelObj or (byte)NftMsgType.DestroyObj)
            obj = obj with { Data = null, UserData = null };
        else
            obj = obj with
            {
                Use = use,
                Data = o.Counter is { } cell
                    ? WithTotals(o.Object.Data!, cell, _backend.ReadCounter(CounterRef.Named(t.Family, t.Name, o.Name, o.Type)))
                    : o.Object.Data,
            };
        obj.Encode(b, WireFormat.Kernel);
        b.EndMessage(m);
    }
}
