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

    public void Table(NetlinkWriter b, Header h, TableRecord t)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        b.PutString(NftaTable.Name, t.Name);
        b.PutU32Be(NftaTable.Use, (uint)TableUse(t));
        b.PutU64Be(NftaTable.Handle, t.Handle);
        if (h.Msg != (byte)NftMsgType.DelTable && h.Msg != (byte)NftMsgType.DestroyTable)
        {
            b.PutU32Be(NftaTable.Flags, t.Flags & (uint)NftTableFlags.Mask);
            if ((t.Flags & (uint)NftTableFlags.Owner) != 0) b.PutU32Be(NftaTable.Owner, t.OwnerPortId);
            if (t.UserData != null) b.PutRaw(NftaTable.UserData, t.UserData);
        }
        b.EndMessage(m);
    }

    public void Chain(NetlinkWriter b, Header h, TableRecord t, ChainRecord c, uint use)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        b.PutString(NftaChain.Table, t.Name);
        b.PutString(NftaChain.Name, c.Name);
        b.PutU64Be(NftaChain.Handle, c.Handle);
        if (h.Msg != (byte)NftMsgType.DelChain && h.Msg != (byte)NftMsgType.DestroyChain)
        {
            if (c.Hook is { } hk)
            {
                var n = b.BeginNestedRaw(NftaChain.Hook);
                b.PutU32Be(NftaHook.HookNum, hk.HookNum);
                b.PutU32Be(NftaHook.Priority, (uint)hk.Priority);
                if (IsNetdevHook(t.Family, hk.HookNum))
                {
                    var d = b.BeginNestedRaw(NftaHook.Devs);
                    foreach (var dev in hk.Devices) b.PutString(1 /* NFTA_DEVICE_NAME */, dev);
                    b.EndNested(d);
                    if (hk.Devices.Length == 1) b.PutString(NftaHook.Dev, hk.Devices[0]);
                }
                b.EndNested(n);
                b.PutU32Be(NftaChain.Policy, hk.Policy);
                b.PutString(NftaChain.Type, hk.Type);
            }
            if (c.Flags != 0) b.PutU32Be(NftaChain.Flags, c.Flags);
            b.PutU32Be(NftaChain.Use, use);
            if (c.UserData != null) b.PutRaw(NftaChain.UserData, c.UserData);
        }
        b.EndMessage(m);
    }

    public static bool IsNetdevHook(byte family, uint hook) =>
        family == NfProto.Netdev || (family == NfProto.Inet && hook == 5 /* NF_INET_INGRESS */);

    public void Rule(NetlinkWriter b, Header h, TableRecord t, ChainRecord c, RuleRecord r, ulong? position)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        var rule = r.Rule with { Family = t.Family, Table = t.Name, Chain = c.Name, Position = position, Expressions = WithCounters(t, c, r) };
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
        ulong packets = cell.Packets + (live?.Packets ?? 0);
        ulong bytes = cell.Bytes + (live?.Bytes ?? 0);
        return e switch
        {
            CounterExpr => new CounterExpr(bytes, packets),
            // nft_quota_do_dump: `used` never shows more than the quota, which is then reported depleted
            QuotaExpr q => q with
            {
                Consumed = Math.Min(bytes, q.Bytes),
                Flags = bytes >= q.Bytes ? (q.Flags ?? 0) | QuotaExpr.NFT_QUOTA_F_DEPLETED : q.Flags,
            },
            _ => e,
        };
    }

    public void Set(NetlinkWriter b, Header h, TableRecord t, SetRecord s)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        b.PutString(NftaSet.Table, t.Name);
        b.PutString(NftaSet.Name, s.Name);
        b.PutU64Be(NftaSet.Handle, s.Handle);
        if (h.Msg == (byte)NftMsgType.DelSet || h.Msg == (byte)NftMsgType.DestroySet)
        {
            b.EndMessage(m);
            return;
        }
        if (s.Flags != 0) b.PutU32Be(NftaSet.Flags, s.Flags);
        b.PutU32Be(NftaSet.KeyType, s.KeyType);
        b.PutU32Be(NftaSet.KeyLen, s.KeyLen);
        if (s.IsMap)
        {
            b.PutU32Be(NftaSet.DataType, s.DataType ?? 0);
            b.PutU32Be(NftaSet.DataLen, s.DataLen ?? 0);
        }
        if ((s.Flags & (uint)NftSetFlags.Object) != 0) b.PutU32Be(NftaSet.ObjType, s.ObjType ?? 0);
        if (s.Timeout is ulong to && to != 0) b.PutU64Be(NftaSet.Timeout, to);
        if (s.GcInterval is uint gc && gc != 0) b.PutU32Be(NftaSet.GcInterval, gc);
        if (s.Policy is uint pol && pol != 0) b.PutU32Be(NftaSet.Policy, pol);
        if (s.UserData != null) b.PutRaw(NftaSet.UserData, s.UserData);
        new SetDesc(s.DescSize is uint size && size != 0 ? size : null, s.ConcatFieldLens).Encode(b, NftaSet.Desc, WireFormat.Kernel);
        b.PutU32Be(NftaSet.Count, (uint)s.Elements.Countable);
        if (s.Expr != null) ExpressionCodec.Encode(b, s.Expr, NftaSet.Expr, WireFormat.Kernel);
        else if (s.Expressions != null)
        {
            var list = b.BeginNestedRaw(NftaSet.Expressions);
            foreach (var e in s.Expressions) ExpressionCodec.Encode(b, e, NftaList.Elem, WireFormat.Kernel);
            b.EndNested(list);
        }
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

    public void Element(NetlinkWriter b, ElementRecord e)
    {
        var el = e.ExpiresAtMs is long exp ? e.Element with { Expiration = (ulong)Math.Max(0, exp - _nowMs()) } : e.Element;
        el.Encode(b, NftaList.Elem, WireFormat.Kernel);
    }

    public void Object(NetlinkWriter b, Header h, TableRecord t, ObjectRecord o, uint use)
    {
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, h.Msg, h.Flags, h.Seq, h.PortId, t.Family, h.ResId);
        b.PutString(NftaObj.Table, t.Name);
        b.PutString(NftaObj.Name, o.Name);
        b.PutU32Be(NftaObj.Type, o.Type);
        b.PutU64Be(NftaObj.Handle, o.Handle);
        if (h.Msg != (byte)NftMsgType.DelObj && h.Msg != (byte)NftMsgType.DestroyObj)
        {
            b.PutU32Be(NftaObj.Use, use);
            var d = b.BeginNestedRaw(NftaObj.Data);
            var state = o.Counter is { } cell
                ? WithTotals(o.Data, cell, _backend.ReadCounter(new CounterRef(t.Family, t.Name, null, 0, 0, o.Name)))
                : o.Data;
            state.EncodeData(b, WireFormat.Kernel);
            b.EndNested(d);
            if (o.UserData != null) b.PutRaw(NftaObj.UserData, o.UserData);
        }
        b.EndMessage(m);
    }
}
