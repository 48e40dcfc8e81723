using Nft.Bytecode.Data;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>GET requests: dumps (NLM_F_DUMP) and single-object lookups, as nf_tables_get* and nf_tables_dump_*.</summary>
public sealed partial class NfTablesEndpoint
{
    /// <summary>Answers a GET; returns true for a dump (which gets no ACK).</summary>
    bool Get(in NetlinkMessage msg, byte type, uint portId, List<byte[]> output)
    {
        var h = msg.Header;
        byte family = msg.GenMsg.Family;
        bool dump = (h.Flags & NlmFlags.Dump) != 0;
        var snap = _ns.Committed;
        var enc = _ns.Encoder;
        switch (type)
        {
            case (byte)NftMsgType.GetTable:
            {
                var a = msg.AttributeTable(NftaTable.Max);
                if (dump)
                {
                    var d = new DumpWriter(output, h.Seq, portId);
                    foreach (var t in snap.Tables)
                    {
                        if (family != 0 && t.Family != family) continue;
                        d.Begin();
                        enc.Table(d.B, Hdr((byte)NftMsgType.NewTable, NlmFlags.Multi, h, portId), t);
                        d.End();
                    }
                    d.Done();
                    return true;
                }
                var table = LookupTable(snap, a, NftaTable.Name, family);
                Single(output, b => enc.Table(b, Hdr((byte)NftMsgType.NewTable, NlmFlags.None, h, portId), table));
                return false;
            }
            case (byte)NftMsgType.GetChain:
            {
                var a = msg.AttributeTable(NftaChain.Max);
                if (dump)
                {
                    var d = new DumpWriter(output, h.Seq, portId);
                    foreach (var t in snap.Tables)
                    {
                        if (family != 0 && t.Family != family) continue;
                        var refs = Transaction.ChainRefs(t);
                        foreach (var c in t.Chains)
                        {
                            d.Begin();
                            enc.Chain(d.B, Hdr((byte)NftMsgType.NewChain, NlmFlags.Multi, h, portId), t, c, ChainUse(c, refs));
                            d.End();
                        }
                    }
                    d.Done();
                    return true;
                }
                var table = LookupTable(snap, a, NftaChain.Table, family);
                if (!a.TryGet(NftaChain.Name, out var na)) throw new NetlinkException(Errno.EINVAL);
                var chain = table.FindChain(na.String()) ?? throw new NetlinkException(Errno.ENOENT, null, na.Offset);
                uint use = ChainUse(chain, Transaction.ChainRefs(table));
                Single(output, b => enc.Chain(b, Hdr((byte)NftMsgType.NewChain, NlmFlags.None, h, portId), table, chain, use));
                return false;
            }
            case (byte)NftMsgType.GetRule or (byte)NftMsgType.GetRuleReset:
            {
                var a = msg.AttributeTable(NftaRule.Max);
                bool reset = type == (byte)NftMsgType.GetRuleReset;
                if (dump)
                {
                    string? tf = a.TryGet(NftaRule.Table, out var ta) ? ta.String() : null;
                    string? cf = a.TryGet(NftaRule.Chain, out var ca) ? ca.String() : null;
                    var d = new DumpWriter(output, h.Seq, portId);
                    foreach (var t in snap.Tables)
                    {
                        if ((family != 0 && t.Family != family) || (tf != null && t.Name != tf)) continue;
                        foreach (var c in t.Chains)
                        {
                            if (cf != null && c.Name != cf) continue;
                            ulong? prev = null;
                            foreach (var r in c.Rules)
                            {
                                d.Begin();
                                enc.Rule(d.B, Hdr((byte)NftMsgType.NewRule, NlmFlags.Multi | NlmFlags.Append, h, portId), t, c, r, prev);
                                d.End();
                                if (reset) ResetRule(t, c, r);
                                prev = r.Handle;
                            }
                        }
                    }
                    d.Done();
                    return true;
                }
                var table = LookupTable(snap, a, NftaRule.Table, family);
                if (!a.TryGet(NftaRule.Chain, out var cn)) throw new NetlinkException(Errno.EINVAL);
                var chain = table.FindChain(cn.String()) ?? throw new NetlinkException(Errno.ENOENT, null, cn.Offset);
                if (!a.TryGet(NftaRule.Handle, out var hn)) throw new NetlinkException(Errno.EINVAL);
                int ri = chain.IndexOfRule(hn.U64Be());
                if (ri < 0) throw new NetlinkException(Errno.ENOENT, null, hn.Offset);
                var rule = chain.Rules[ri];
                ulong? position = ri > 0 ? chain.Rules[ri - 1].Handle : null;
                Single(output, b => enc.Rule(b, Hdr((byte)NftMsgType.NewRule, NlmFlags.None, h, portId), table, chain, rule, position));
                if (reset) ResetRule(table, chain, rule);
                return false;
            }
            case (byte)NftMsgType.GetSet:
            {
                var a = msg.AttributeTable(NftaSet.Max);
                if (dump)
                {
                    string? tf = a.TryGet(NftaSet.Table, out var ta) ? ta.String() : null;
                    var d = new DumpWriter(output, h.Seq, portId);
                    foreach (var t in snap.Tables)
                    {
                        if ((family != 0 && t.Family != family) || (tf != null && t.Name != tf)) continue;
                        foreach (var s in t.Sets)
                        {
                            d.Begin();
                            enc.Set(d.B, Hdr((byte)NftMsgType.NewSet, NlmFlags.Multi, h, portId), t, s);
                            d.End();
                        }
                    }
                    d.Done();
                    return true;
                }
                var table = LookupTable(snap, a, NftaSet.Table, family);
                if (!a.TryGet(NftaSet.Name, out var na)) throw new NetlinkException(Errno.EINVAL);
                var set = table.FindSet(na.String()) ?? throw new NetlinkException(Errno.ENOENT, null, na.Offset);
                Single(output, b => enc.Set(b, Hdr((byte)NftMsgType.NewSet, NlmFlags.None, h, portId), table, set));
                return false;
            }
            case (byte)NftMsgType.GetSetElem or (byte)NftMsgType.GetSetElemReset:
                return GetSetElem(msg, family, dump, portId, output);
            case (byte)NftMsgType.GetObj or (byte)NftMsgType.GetObjReset:
            {
                var a = msg.AttributeTable(NftaObj.Max);
                bool reset = type == (byte)NftMsgType.GetObjReset;
                if (dump)
                {
                    string? tf = a.TryGet(NftaObj.Table, out var ta) ? ta.String() : null;
                    uint? typeFilter = a.TryGet(NftaObj.Type, out var ty) ? ty.U32Be() : null;
                    var d = new DumpWriter(output, h.Seq, portId);
                    foreach (var t in snap.Tables)
                    {
                        if ((family != 0 && t.Family != family) || (tf != null && t.Name != tf)) continue;
                        foreach (var o in t.Objects)
                        {
                            if (typeFilter is uint tyf && o.Type != tyf) continue;
                            d.Begin();
                            enc.Object(d.B, Hdr((byte)NftMsgType.NewObj, NlmFlags.Multi | NlmFlags.Append, h, portId), t, o, (uint)Transaction.ObjectUse(t, o));
                            d.End();
                            if (reset) ResetObject(t, o);
                        }
                    }
                    d.Done();
                    return true;
                }
                var table = LookupTable(snap, a, NftaObj.Table, family);
                if (!a.TryGet(NftaObj.Name, out var na) || !a.TryGet(NftaObj.Type, out var tya)) throw new NetlinkException(Errno.EINVAL);
                int oi = table.IndexOfObject(na.String(), tya.U32Be());
                if (oi < 0) throw new NetlinkException(Errno.ENOENT, null, na.Offset);
                var obj = table.Objects[oi];
                Single(output, b => enc.Object(b, Hdr((byte)NftMsgType.NewObj, NlmFlags.None, h, portId), table, obj, (uint)Transaction.ObjectUse(table, obj)));
                if (reset) ResetObject(table, obj);
                return false;
            }
            case (byte)NftMsgType.GetFlowtable:
            {
                if (dump)
                {
                    new DumpWriter(output, h.Seq, portId).Done();
                    return true;
                }
                var a = msg.AttributeTable(2);
                LookupTable(snap, a, NftaFlowtable.Table, family);
                if (!a.TryGet(NftaFlowtable.Name, out var na)) throw new NetlinkException(Errno.EINVAL);
                throw new NetlinkException(Errno.ENOENT, null, na.Offset);
            }
        }
        throw new NetlinkException(Errno.EOPNOTSUPP);
    }

    bool GetSetElem(in NetlinkMessage msg, byte family, bool dump, uint portId, List<byte[]> output)
    {
        var h = msg.Header;
        var a = msg.AttributeTable(NftaSetElemList.Max);
        var snap = _ns.Committed;
        var enc = _ns.Encoder;
        var table = LookupTable(snap, a, NftaSetElemList.Table, family);
        if (!a.TryGet(NftaSetElemList.Set, out var sa)) throw new NetlinkException(Errno.EINVAL);
        var set = table.FindSet(sa.String()) ?? throw new NetlinkException(Errno.ENOENT, null, sa.Offset);
        if (_ns.Backend.PacketPathElements(family, table.Name, set.Name) is { } packetPath) set = PacketPathElements.Merge(_ns, set, packetPath);
        long now = _ns.NowMs();
        var all = set.Elements.Where(e => e.ExpiresAtMs is not long x || x > now).ToList();
        var live = all.Where(e => (e.Flags & (uint)NftSetElemFlags.Catchall) == 0).ToList();
        var catchAll = all.Where(e => (e.Flags & (uint)NftSetElemFlags.Catchall) != 0).ToList();
        SetDumpOrder.Apply(set, live);
        var hdr = Hdr((byte)NftMsgType.NewSetElem, NlmFlags.Multi, h, portId);
        if (dump)
        {
            // nf_tables_dump_set: one message per skb with as many elements as fit; the call that finds
            // nothing left still emits an empty message, followed by NLMSG_DONE.
            var b = new NetlinkWriter(4096);
            int i = 0;
            do
            {
                b.Clear();
                var tok = enc.BeginElements(b, hdr, table, set);
                int room = DaemonFrame.DumpChunk;
                while (i < live.Count)
                {
                    int before = b.Length;
                    enc.Element(b, table, set, live[i]);
                    if (b.Length > room && before > tok.List.Start + 4) { b.Truncate(before); break; }
                    i++;
                }
                enc.EndElements(b, tok);
                if (i >= live.Count && live.Count > 0 && b.Length > 0)
                {
                    // the call that finds the walk exhausted dumps the catch-all elements
                    output.Add(b.ToArray());
                    b.Clear();
                    var last = enc.BeginElements(b, hdr, table, set);
                    foreach (var c in catchAll) enc.Element(b, table, set, c);
                    enc.EndElements(b, last);
                    break;
                }
                if (live.Count == 0)
                {
                    b.Truncate(0);
                    var only = enc.BeginElements(b, hdr, table, set);
                    foreach (var c in catchAll) enc.Element(b, table, set, c);
                    enc.EndElements(b, only);
                }
                if (i >= live.Count) break;
                output.Add(b.ToArray());
            } while (true);
            var d = new DumpWriter(output, h.Seq, portId);
            d.B.WriteRaw(b.WrittenSpan);
            d.AppendDone();
            d.Flush();
            return true;
        }
        if (!a.TryGet(NftaSetElemList.Elements, out var list)) throw new NetlinkException(Errno.EINVAL);
        var r = list.Nested();
        var replies = new List<byte[]>();
        while (r.TryRead(out var ea))
        {
            var et = ea.Table(NftaSetElem.Max);
            uint flags = et.TryGet(NftaSetElem.Flags, out var fa) ? fa.U32Be() : 0;
            byte[] key = et.TryGet(NftaSetElem.Key, out var ka) && ka.Table(1).TryGet(NftaData.Value, out var kv) ? kv.Payload.ToArray() : [];
            byte[]? keyEnd = et.TryGet(NftaSetElem.KeyEnd, out var kea) && kea.Table(1).TryGet(NftaData.Value, out var kev) ? kev.Payload.ToArray() : null;
            var found = Find(set, key, keyEnd, flags);
            if (found == null) throw new NetlinkException(Errno.ENOENT, null, ea.Offset);
            var b = new NetlinkWriter(256);
            var tok = enc.BeginElements(b, Hdr((byte)NftMsgType.NewSetElem, NlmFlags.None, h, portId), table, set);
            enc.Element(b, table, set, found);
            enc.EndElements(b, tok);
            replies.Add(b.ToArray());
        }
        output.AddRange(replies);
        return false;
    }

    /// <summary>Element lookup as nft_get_set_elem: exact key, or for interval sets the range holding it.</summary>
    static ElementRecord? Find(SetRecord s, byte[] key, byte[]? keyEnd, uint flags)
    {
        if (s.Elements.TryGetValue(new ElementKey(key, keyEnd, flags), out var e)) return e;
        if (!s.IsInterval) return null;
        // the range holding the key starts at the last element at or below it
        var (below, _) = s.Elements.Around(key);
        return below is { IsIntervalEnd: false } && (below.Flags & (uint)NftSetElemFlags.Catchall) == 0 ? below : null;
    }

    static uint ChainUse(ChainRecord c, Dictionary<string, int> refs) => (uint)(c.Rules.Count + refs.GetValueOrDefault(c.Name));

    NftEncoder.Header Hdr(byte msg, NlmFlags flags, NlMsgHeader req, uint portId) =>
        new(msg, flags, req.Seq, portId, _ns.ResId);

    static void Single(List<byte[]> output, Action<NetlinkWriter> write)
    {
        var b = new NetlinkWriter(512);
        write(b);
        output.Add(b.ToArray());
    }

    TableRecord LookupTable(RulesetSnapshot snap, in AttributeTable a, ushort attr, byte family)
    {
        if (!a.TryGet(attr, out var na)) throw new NetlinkException(Errno.EINVAL);
        return snap.FindTable(family, na.String()) ?? throw new NetlinkException(Errno.ENOENT, null, na.Offset);
    }

    /// <summary>The kernel's dump with reset resets each stateful expression of the rule: counters, and quotas (nft_quota_do_dump) too.</summary>
    void ResetRule(TableRecord t, ChainRecord c, RuleRecord r)
    {
        for (int i = 0; i < r.Expressions.Count; i++)
            if (r.Counters[i] is { } cell && r.Expressions[i] is Nft.Bytecode.Expressions.CounterExpr or Nft.Bytecode.Expressions.QuotaExpr)
            {
                cell.Packets = 0;
                cell.Bytes = 0;
                _countersReset = true;
                _ns.Backend.ResetCounter(new CounterRef(t.Family, t.Name, c.Name, r.Handle, i, null));
            }
    }

    void ResetObject(TableRecord t, ObjectRecord o)
    {
        if (o.Counter is not { } cell) return;
        cell.Packets = 0;
        cell.Bytes = 0;
        _countersReset = true;
        _ns.Backend.ResetCounter(CounterRef.Named(t.Family, t.Name, o.Name, o.Type));
    }
}
