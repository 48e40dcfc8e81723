using System.Buffers.Binary;
using Nft.Netlink;
using static Bpfilter.Integration.Tests.Robustness.NfWire;

namespace Bpfilter.Integration.Tests.Robustness;

/// <summary>
/// Well-formed nf_tables requests, laid out as nft 1.0.6 sends them (batch begin, messages, batch
/// end in one send; GET requests alone). Every message asks for an ACK so that the kernel answers
/// each one; <see cref="RobustnessTests"/> checks that the kernel accepts all of them unmutated.
/// Each request is one byte array: the bytes of one send call.
/// </summary>
sealed class RequestCorpus
{
    uint _seq = 1;
    readonly NlmFlags _ack = NlmFlags.Request | NlmFlags.Ack;

    /// <summary>Requests built around table name <paramref name="t"/> (unique per build).</summary>
    public List<(string Name, byte[] Bytes)> Build(string t)
    {
        var list = new List<(string, byte[])>
        {
            ("newtable", Batch(w => NewTableMsg(w, FamilyIp, t))),
            ("newtable-inet+chains", Batch(w =>
            {
                NewTableMsg(w, FamilyInet, t);
                NewChainMsg(w, FamilyInet, t, "input", HookInput, 0, "filter");
                NewChainMsg(w, FamilyInet, t, "sub", null, 0, null);
            })),
            ("ruleset", Batch(w =>
            {
                NewTableMsg(w, FamilyIp, t + "r");
                NewChainMsg(w, FamilyIp, t + "r", "c", HookOutput, 10, "filter");
                NewChainMsg(w, FamilyIp, t + "r", "sub", null, 0, null);
                NewSetMsg(w, FamilyIp, t + "r", "blocked", 1, keyType: 7, keyLen: 4, SetInterval);
                NewElemsMsg(w, FamilyIp, t + "r", "blocked",
                    [([10, 0, 0, 0], [10, 255, 255, 255]), ([198, 18, 0, 1], [198, 18, 0, 1])]);
                NewCounterMsg(w, FamilyIp, t + "r", "hits");
                // ip saddr 10.0.0.1 counter accept
                NewRuleMsg(w, FamilyIp, t + "r", "c", e =>
                {
                    Payload(e, BaseNetwork, 12, 4);
                    Cmp(e, CmpEq, [10, 0, 0, 1]);
                    Counter(e);
                    Immediate(e, NfAccept, null);
                });
                // ip saddr @blocked drop
                NewRuleMsg(w, FamilyIp, t + "r", "c", e =>
                {
                    Payload(e, BaseNetwork, 12, 4);
                    Lookup(e, "blocked", 1);
                    Immediate(e, NfDrop, null);
                });
                // meta l4proto tcp tcp dport 1000-2000 jump sub
                NewRuleMsg(w, FamilyIp, t + "r", "c", e =>
                {
                    Meta(e, MetaL4proto);
                    Cmp(e, CmpEq, [6]);
                    Payload(e, BaseTransport, 2, 2);
                    Range(e, [0x03, 0xe8], [0x07, 0xd0]);
                    Immediate(e, NftJump, "sub");
                });
                // meta mark & 0xff == 0x2a return
                NewRuleMsg(w, FamilyIp, t + "r", "sub", e =>
                {
                    Meta(e, MetaMark);
                    Bitwise(e, [0xff, 0, 0, 0], [0, 0, 0, 0]);
                    Cmp(e, CmpEq, [0x2a, 0, 0, 0]);
                    Immediate(e, NftReturn, null);
                });
            })),
            ("getgen", Single(w => w.BeginNfMessage(Nfnl.SubsysNftables, GetGen, _ack, _seq++, 0, FamilyUnspec, 0))),
            ("gettable", Single(w =>
            {
                var m = w.BeginNfMessage(Nfnl.SubsysNftables, GetTable, _ack, _seq++, 0, FamilyIp, 0);
                w.PutString(TableName, t);
                return m;
            })),
            ("dump-tables", Single(w => w.BeginNfMessage(Nfnl.SubsysNftables, GetTable, NlmFlags.Request | NlmFlags.Dump, _seq++, 0, FamilyUnspec, 0))),
            ("dump-rules", Single(w => w.BeginNfMessage(Nfnl.SubsysNftables, GetRule, NlmFlags.Request | NlmFlags.Dump, _seq++, 0, FamilyUnspec, 0))),
            ("delete", Batch(w =>
            {
                NewTableMsg(w, FamilyIp6, t + "d");
                NewChainMsg(w, FamilyIp6, t + "d", "c", null, 0, null);
                var m = w.BeginNfMessage(Nfnl.SubsysNftables, DelChain, _ack, _seq++, 0, FamilyIp6, 0);
                w.PutString(ChainTable, t + "d");
                w.PutString(ChainName, "c");
                w.EndMessage(m);
                m = w.BeginNfMessage(Nfnl.SubsysNftables, DelTable, _ack, _seq++, 0, FamilyIp6, 0);
                w.PutString(TableName, t + "d");
                w.EndMessage(m);
            })),
        };
        return list;
    }

    /// <summary>A table, a base chain at output and one rule with the given expressions: one batch.</summary>
    public byte[] OneRule(string table, Action<NetlinkWriter> exprs) => Batch(w =>
    {
        NewTableMsg(w, FamilyIp, table);
        NewChainMsg(w, FamilyIp, table, "c", HookOutput, 0, "filter");
        NewChainMsg(w, FamilyIp, table, "sub", null, 0, null);
        NewRuleMsg(w, FamilyIp, table, "c", exprs);
    });

    byte[] Batch(Action<NetlinkWriter> body)
    {
        var w = new NetlinkWriter();
        var b = w.BeginNfMessage(Nfnl.SubsysNone, 0, NlmFlags.Request, _seq++, 0, FamilyUnspec, Nfnl.SubsysNftables);
        w.EndMessage(b);
        body(w);
        var e = w.BeginNfMessage(Nfnl.SubsysNone, 0, NlmFlags.Request, _seq++, 0, FamilyUnspec, Nfnl.SubsysNftables);
        w.EndMessage(e);
        var all = w.ToArray();
        // BATCH_BEGIN/END are NFNL_MSG_BATCH_BEGIN/END (0x10/0x11), not subsystem messages: set the type directly.
        BinaryPrimitives.WriteUInt16LittleEndian(all.AsSpan(b.Start + 4), Nfnl.MsgBatchBegin);
        BinaryPrimitives.WriteUInt16LittleEndian(all.AsSpan(e.Start + 4), Nfnl.MsgBatchEnd);
        return all;
    }

    static byte[] Single(Func<NetlinkWriter, NetlinkWriter.Token> body)
    {
        var w = new NetlinkWriter();
        var m = body(w);
        w.EndMessage(m);
        return w.ToArray();
    }

    void NewTableMsg(NetlinkWriter w, byte family, string name)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewTable, _ack | NlmFlags.Create, _seq++, 0, family, 0);
        w.PutString(TableName, name);
        w.PutU32Be(TableFlags, 0);
        w.EndMessage(m);
    }

    void NewChainMsg(NetlinkWriter w, byte family, string table, string name, uint? hook, int prio, string? type)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewChain, _ack | NlmFlags.Create, _seq++, 0, family, 0);
        w.PutString(ChainTable, table);
        w.PutString(ChainName, name);
        if (hook is uint h)
        {
            var n = w.BeginNested(ChainHook);
            w.PutU32Be(HookNum, h);
            w.PutU32Be(HookPriority, (uint)prio);
            w.EndNested(n);
            w.PutU32Be(ChainPolicy, (uint)NfAccept);
            w.PutString(ChainType, type!);
        }
        w.EndMessage(m);
    }

    void NewRuleMsg(NetlinkWriter w, byte family, string table, string chain, Action<NetlinkWriter> exprs)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewRule, _ack | NlmFlags.Create | NlmFlags.Append, _seq++, 0, family, 0);
        w.PutString(RuleTable, table);
        w.PutString(RuleChain, chain);
        var list = w.BeginNested(RuleExpressions);
        exprs(w);
        w.EndNested(list);
        w.EndMessage(m);
    }

    void NewSetMsg(NetlinkWriter w, byte family, string table, string name, uint id, uint keyType, uint keyLen, uint flags)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewSet, _ack | NlmFlags.Create, _seq++, 0, family, 0);
        w.PutString(SetTable, table);
        w.PutString(SetName, name);
        w.PutU32Be(SetFlags, flags);
        w.PutU32Be(SetKeyType, keyType);
        w.PutU32Be(SetKeyLen, keyLen);
        w.PutU32Be(SetId, id);
        w.EndMessage(m);
    }

    /// <summary>Interval elements as nft sends them: a start element, then an end element flagged INTERVAL_END.</summary>
    void NewElemsMsg(NetlinkWriter w, byte family, string table, string set, (byte[] From, byte[] To)[] ranges)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewSetElem, _ack | NlmFlags.Create, _seq++, 0, family, 0);
        w.PutString(SetElemListTable, table);
        w.PutString(SetElemListSet, set);
        var elems = w.BeginNested(SetElemListElements);
        foreach (var (from, to) in ranges)
        {
            var e = w.BeginNested(ListElem);
            var k = w.BeginNested(SetElemKey);
            w.PutBytes(DataValue, from);
            w.EndNested(k);
            w.EndNested(e);
            var end = Increment(to);
            e = w.BeginNested(ListElem);
            w.PutU32Be(SetElemFlags, 1); // NFT_SET_ELEM_INTERVAL_END
            k = w.BeginNested(SetElemKey);
            w.PutBytes(DataValue, end);
            w.EndNested(k);
            w.EndNested(e);
        }
        w.EndNested(elems);
        w.EndMessage(m);
    }

    static byte[] Increment(byte[] v)
    {
        var r = (byte[])v.Clone();
        for (int i = r.Length - 1; i >= 0; i--)
            if (++r[i] != 0) break;
        return r;
    }

    void NewCounterMsg(NetlinkWriter w, byte family, string table, string name)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, NewObj, _ack | NlmFlags.Create, _seq++, 0, family, 0);
        w.PutString(ObjTable, table);
        w.PutString(ObjName, name);
        w.PutU32Be(ObjType, ObjectCounter);
        var d = w.BeginNested(ObjData);
        w.PutU64Be(CounterBytes, 0);
        w.PutU64Be(CounterPackets, 0);
        w.EndNested(d);
        w.EndMessage(m);
    }

    internal static void Expr(NetlinkWriter w, string name, Action<NetlinkWriter> data)
    {
        var e = w.BeginNested(ListElem);
        w.PutString(ExprName, name);
        var d = w.BeginNested(ExprData);
        data(w);
        w.EndNested(d);
        w.EndNested(e);
    }

    internal static void Payload(NetlinkWriter w, uint @base, uint offset, uint len) => Expr(w, "payload", x =>
    {
        x.PutU32Be(PayloadDreg, Reg1);
        x.PutU32Be(PayloadBase, @base);
        x.PutU32Be(PayloadOffset, offset);
        x.PutU32Be(PayloadLen, len);
    });

    internal static void Meta(NetlinkWriter w, uint key) => Expr(w, "meta", x =>
    {
        x.PutU32Be(MetaKey, key);
        x.PutU32Be(MetaDreg, Reg1);
    });

    internal static void Cmp(NetlinkWriter w, uint op, byte[] value) => Expr(w, "cmp", x =>
    {
        x.PutU32Be(CmpSreg, Reg1);
        x.PutU32Be(CmpOp, op);
        var d = x.BeginNested(CmpData);
        x.PutBytes(DataValue, value);
        x.EndNested(d);
    });

    internal static void Range(NetlinkWriter w, byte[] from, byte[] to) => Expr(w, "range", x =>
    {
        x.PutU32Be(RangeSreg, Reg1);
        x.PutU32Be(RangeOp, CmpEq);
        var d = x.BeginNested(RangeFrom);
        x.PutBytes(DataValue, from);
        x.EndNested(d);
        d = x.BeginNested(RangeTo);
        x.PutBytes(DataValue, to);
        x.EndNested(d);
    });

    internal static void Bitwise(NetlinkWriter w, byte[] mask, byte[] xor) => Expr(w, "bitwise", x =>
    {
        x.PutU32Be(BitwiseSreg, Reg1);
        x.PutU32Be(BitwiseDreg, Reg1);
        x.PutU32Be(BitwiseLen, (uint)mask.Length);
        var d = x.BeginNested(BitwiseMask);
        x.PutBytes(DataValue, mask);
        x.EndNested(d);
        d = x.BeginNested(BitwiseXor);
        x.PutBytes(DataValue, xor);
        x.EndNested(d);
    });

    internal static void Lookup(NetlinkWriter w, string set, uint setId) => Expr(w, "lookup", x =>
    {
        x.PutString(LookupSet, set);
        x.PutU32Be(LookupSetId, setId);
        x.PutU32Be(LookupSreg, Reg1);
    });

    internal static void Counter(NetlinkWriter w) => Expr(w, "counter", x =>
    {
        x.PutU64Be(CounterBytes, 0);
        x.PutU64Be(CounterPackets, 0);
    });

    internal static void Immediate(NetlinkWriter w, int verdict, string? chain) => Expr(w, "immediate", x =>
    {
        x.PutU32Be(ImmDreg, RegVerdict);
        var d = x.BeginNested(ImmData);
        var v = x.BeginNested(DataVerdict);
        x.PutU32Be(VerdictCode, (uint)verdict);
        if (chain != null) x.PutString(VerdictChain, chain);
        x.EndNested(v);
        x.EndNested(d);
    });
}
