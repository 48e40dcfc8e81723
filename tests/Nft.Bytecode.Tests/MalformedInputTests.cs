using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Bytecode.Tests;

/// <summary>
/// Malformed or hostile input is refused with a NetlinkException carrying the errno the kernel would
/// give and the offset (from the start of the message) of the attribute to blame.
/// </summary>
public class MalformedInputTests
{
    const int FirstAttr = NlMsgHeader.Size + NfGenMsg.Size; // 20
    const int EOVERFLOW = 75;

    static byte[] Message(NftMsgType type, Action<NetlinkWriter> attrs, byte family = NfProto.Inet)
    {
        var w = new NetlinkWriter();
        var t = w.BeginNfMessage(Nfnl.SubsysNftables, (byte)type, NlmFlags.Request, 1, 0, family, 0);
        attrs(w);
        w.EndMessage(t);
        return w.ToArray();
    }

    static NetlinkException Refused(byte[] bytes)
    {
        var r = new NetlinkMessageReader(bytes);
        Assert.True(r.TryRead(out var msg));
        try
        {
            NftMessage.Decode(msg);
        }
        catch (NetlinkException e)
        {
            return e;
        }
        throw new Xunit.Sdk.XunitException("message was accepted");
    }

    static object Accepted(byte[] bytes)
    {
        var r = new NetlinkMessageReader(bytes);
        Assert.True(r.TryRead(out var msg));
        return NftMessage.Decode(msg);
    }

    static void Expr(NetlinkWriter w, string name, Action<NetlinkWriter> data)
    {
        var e = w.BeginNested(NftaList.Elem);
        w.PutString(NftaExpr.Name, name);
        var d = w.BeginNested(NftaExpr.Data);
        data(w);
        w.EndNested(d);
        w.EndNested(e);
    }

    static void Counter(NetlinkWriter w) => Expr(w, "counter", _ => { });

    static byte[] RuleWith(params Action<NetlinkWriter>[] exprs) => Message(NftMsgType.NewRule, w =>
    {
        w.PutString(NftaRule.Table, "t");
        w.PutString(NftaRule.Chain, "c");
        var l = w.BeginNested(NftaRule.Expressions);
        foreach (var x in exprs) x(w);
        w.EndNested(l);
    });

    /// <summary>Offset of the n-th NFTA_LIST_ELEM in RuleWith's expression list (table "t" and chain "c" take 8 bytes each).</summary>
    static int ElemOffset(byte[] msg, int n)
    {
        int off = FirstAttr + 8 + 8 + 4;
        for (int i = 0; i < n; i++) off += NetlinkLimits.Align(BitConverter.ToUInt16(msg, off));
        return off;
    }

    [Fact]
    public void AttributeLongerThanTheMessageIsBlamedAtItsOffset()
    {
        var bytes = Message(NftMsgType.NewTable, w => { w.PutString(NftaTable.Name, "t"); w.PutU32Be(NftaTable.Flags, 0); });
        bytes[FirstAttr + 8] = 40; // flags attribute now claims 40 bytes
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(FirstAttr + 8, e.Offset);
    }

    [Fact]
    public void AttributeShorterThanItsHeaderIsRefused()
    {
        var bytes = Message(NftMsgType.NewTable, w => { w.PutString(NftaTable.Name, "t"); w.PutU32Be(NftaTable.Flags, 0); });
        bytes[FirstAttr + 8] = 2;
        Assert.Equal(FirstAttr + 8, Refused(bytes).Offset);
    }

    [Fact]
    public void WrongLengthForAU32IsBlamedAtTheAttribute()
    {
        var bytes = Message(NftMsgType.NewTable, w => { w.PutString(NftaTable.Name, "t"); w.PutRaw(NftaTable.Flags, [0, 1]); });
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(FirstAttr + 8, e.Offset);
    }

    [Fact]
    public void NamesFollowNftNameMaxLen()
    {
        var ok = Accepted(Message(NftMsgType.NewTable, w => w.PutString(NftaTable.Name, new string('a', 255))));
        Assert.Equal(255, ((Table)ok).Name!.Length);
        var e = Refused(Message(NftMsgType.NewTable, w => w.PutString(NftaTable.Name, new string('a', 256))));
        Assert.Equal(Errno.ERANGE, e.Errno);
        Assert.Equal(FirstAttr, e.Offset);
    }

    [Fact]
    public void UserDataOverItsMaximumIsRefused()
    {
        var e = Refused(Message(NftMsgType.NewRule, w => { w.PutString(NftaRule.Table, "t"); w.PutRaw(NftaRule.UserData, new byte[257]); }));
        Assert.Equal(Errno.ERANGE, e.Errno);
        Assert.Equal(FirstAttr + 8, e.Offset);
    }

    [Fact]
    public void BadNestingInsideTheHookIsBlamedOnTheInnerAttribute()
    {
        var bytes = Message(NftMsgType.NewChain, w =>
        {
            w.PutString(NftaChain.Table, "t");
            var h = w.BeginNested(NftaChain.Hook);
            w.PutU32Be(NftaHook.HookNum, 1);
            w.PutU32Be(NftaHook.Priority, 0);
            w.EndNested(h);
        });
        int prio = FirstAttr + 8 + 4 + 8;
        bytes[prio] = 200; // priority claims more than its nest holds
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(prio, e.Offset);
    }

    [Fact]
    public void MessageTooShortForNfgenmsgIsRefused()
    {
        var w = new NetlinkWriter();
        var t = w.BeginMessage(Nfnl.Type(Nfnl.SubsysNftables, (byte)NftMsgType.NewTable), NlmFlags.Request, 1, 0);
        w.EndMessage(t);
        var e = Refused(w.ToArray());
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(-1, e.Offset); // nfnetlink acks a short message with EINVAL and no attribute offset
    }

    [Fact]
    public void ExpressionErrorsAreBlamedOnTheirListElement()
    {
        // cmp without NFTA_CMP_OP
        var bytes = RuleWith(Counter, w => Expr(w, "cmp", d =>
        {
            d.PutU32Be(CmpExpr.NFTA_CMP_SREG, 1);
            var v = d.BeginNested(CmpExpr.NFTA_CMP_DATA);
            d.PutRaw(NftaData.Value, [1, 2]);
            d.EndNested(v);
        }));
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(ElemOffset(bytes, 1), e.Offset);
        Assert.Contains("NFTA_CMP_OP", e.ExtAck);
    }

    [Fact]
    public void ZeroLengthPayloadIsEinvalOnItsListElement()
    {
        // The kernel's register store validation refuses a load of nothing (nft_validate_register_store).
        var bytes = RuleWith(w => Expr(w, "payload", d =>
        {
            d.PutU32Be(PayloadExpr.NFTA_PAYLOAD_DREG, 1);
            d.PutU32Be(PayloadExpr.NFTA_PAYLOAD_BASE, PayloadExpr.BaseNetwork);
            d.PutU32Be(PayloadExpr.NFTA_PAYLOAD_OFFSET, 12);
            d.PutU32Be(PayloadExpr.NFTA_PAYLOAD_LEN, 0);
        }));
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(ElemOffset(bytes, 0), e.Offset);
    }

    [Fact]
    public void ExpressionWithoutNameIsRefused()
    {
        var bytes = RuleWith(Counter, w => { var e = w.BeginNested(NftaList.Elem); w.PutU32Be(5, 0); w.EndNested(e); });
        var ex = Refused(bytes);
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(ElemOffset(bytes, 1), ex.Offset);
    }

    [Fact]
    public void AtMost128ExpressionsPerRule()
    {
        var ok = (Rule)Accepted(RuleWith(Enumerable.Repeat<Action<NetlinkWriter>>(Counter, NftLimits.RuleMaxExprs).ToArray()));
        Assert.Equal(128, ok.Expressions!.Count);
        var bytes = RuleWith(Enumerable.Repeat<Action<NetlinkWriter>>(Counter, NftLimits.RuleMaxExprs + 1).ToArray());
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(ElemOffset(bytes, 128), e.Offset);
    }

    [Fact]
    public void DataValueOver64BytesOverflows()
    {
        var bytes = RuleWith(w => Expr(w, "immediate", d =>
        {
            d.PutU32Be(ImmediateExpr.NFTA_IMMEDIATE_DREG, 1);
            var v = d.BeginNested(ImmediateExpr.NFTA_IMMEDIATE_DATA);
            d.PutRaw(NftaData.Value, new byte[65]);
            d.EndNested(v);
        }));
        var e = Refused(bytes);
        Assert.Equal(EOVERFLOW, e.Errno);
        Assert.Equal(ElemOffset(bytes, 0), e.Offset);
    }

    [Fact]
    public void CmpDataWiderThanARegisterOverflows()
    {
        var bytes = RuleWith(w => Expr(w, "cmp", d =>
        {
            d.PutU32Be(CmpExpr.NFTA_CMP_SREG, 1);
            d.PutU32Be(CmpExpr.NFTA_CMP_OP, 0);
            var v = d.BeginNested(CmpExpr.NFTA_CMP_DATA);
            d.PutRaw(NftaData.Value, new byte[17]);
            d.EndNested(v);
        }));
        Assert.Equal(EOVERFLOW, Refused(bytes).Errno);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(-6)]
    [InlineData(0x10000)]
    public void InvalidVerdictCodesAreRefused(int code)
    {
        var bytes = RuleWith(w => Expr(w, "immediate", d =>
        {
            d.PutU32Be(ImmediateExpr.NFTA_IMMEDIATE_DREG, 0);
            var v = d.BeginNested(ImmediateExpr.NFTA_IMMEDIATE_DATA);
            var vd = d.BeginNested(NftaData.Verdict);
            d.PutU32Be(NftaVerdict.Code, (uint)code);
            d.EndNested(vd);
            d.EndNested(v);
        }));
        Assert.Equal(Errno.EINVAL, Refused(bytes).Errno);
    }

    [Fact]
    public void JumpWithoutAChainIsRefused()
    {
        var bytes = RuleWith(w => Expr(w, "immediate", d =>
        {
            d.PutU32Be(ImmediateExpr.NFTA_IMMEDIATE_DREG, 0);
            var v = d.BeginNested(ImmediateExpr.NFTA_IMMEDIATE_DATA);
            var vd = d.BeginNested(NftaData.Verdict);
            d.PutU32Be(NftaVerdict.Code, unchecked((uint)Data.Verdict.Jump));
            d.EndNested(vd);
            d.EndNested(v);
        }));
        Assert.Equal(Errno.EINVAL, Refused(bytes).Errno);
    }

    [Theory]
    [InlineData(24u, Errno.ERANGE)]  // beyond NFT_REG32_15
    [InlineData(6u, Errno.EINVAL)]   // aliases the verdict area
    [InlineData(0u, Errno.EINVAL)]   // the verdict register is no data destination
    public void RegistersAreCheckedAsTheKernelDoes(uint reg, int errno)
    {
        var bytes = RuleWith(w => Expr(w, "meta", d => { d.PutU32Be(MetaExpr.NFTA_META_KEY, 3); d.PutU32Be(MetaExpr.NFTA_META_DREG, reg); }));
        Assert.Equal(errno, Refused(bytes).Errno);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(65u)]
    public void SetKeyLengthOutOfRangeIsBlamedAtIt(uint len)
    {
        var bytes = Message(NftMsgType.NewSet, w => { w.PutString(NftaSet.Table, "t"); w.PutString(NftaSet.Name, "s"); w.PutU32Be(NftaSet.KeyLen, len); });
        var e = Refused(bytes);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(FirstAttr + 16, e.Offset);
    }

    [Fact]
    public void TooManyConcatenationFieldsAreRefused()
    {
        var bytes = Message(NftMsgType.NewSet, w =>
        {
            var d = w.BeginNested(NftaSet.Desc);
            var c = w.BeginNested(NftaSetDesc.Concat);
            for (int i = 0; i < 17; i++)
            {
                var f = w.BeginNested(NftaList.Elem);
                w.PutU32Be(NftaSetField.Len, 4);
                w.EndNested(f);
            }
            w.EndNested(c);
            w.EndNested(d);
        });
        Assert.Equal(Errno.E2BIG, Refused(bytes).Errno);
    }

    [Fact]
    public void BadElementIsBlamedAsAWhole()
    {
        var bytes = Message(NftMsgType.NewSetElem, w =>
        {
            w.PutString(NftaSetElemList.Table, "t");
            w.PutString(NftaSetElemList.Set, "s");
            var l = w.BeginNested(NftaSetElemList.Elements);
            var e = w.BeginNested(NftaList.Elem);
            var k = w.BeginNested(NftaSetElem.Key);
            w.PutRaw(NftaData.Value, [10, 0, 0, 1]);
            w.EndNested(k);
            w.EndNested(e);
            e = w.BeginNested(NftaList.Elem);
            k = w.BeginNested(NftaSetElem.Key);
            w.PutRaw(NftaData.Value, []);
            w.EndNested(k);
            w.EndNested(e);
            w.EndNested(l);
        });
        var ex = Refused(bytes);
        Assert.Equal(Errno.EINVAL, ex.Errno);
        int second = FirstAttr + 8 + 8 + 4 + 16; // after elements header and the first element (4 + key nest 4 + value 8)
        Assert.Equal(second, ex.Offset);
    }

    [Fact]
    public void ExpressionsNestedTooDeeplyAreRefusedWithoutRecursingOn()
    {
        // dynset { expr: dynset { expr: dynset { ... } } } hundreds deep
        var w = new NetlinkWriter();
        const int depth = 500;
        var tokens = new Stack<(NetlinkWriter.Token, NetlinkWriter.Token)>();
        for (int i = 0; i < depth; i++)
        {
            var e = w.BeginNested(i == 0 ? NftaList.Elem : DynsetExpr.NFTA_DYNSET_EXPR);
            w.PutString(NftaExpr.Name, "dynset");
            var d = w.BeginNested(NftaExpr.Data);
            w.PutString(DynsetExpr.NFTA_DYNSET_SET_NAME, "s");
            w.PutU32Be(DynsetExpr.NFTA_DYNSET_OP, 0);
            w.PutU32Be(DynsetExpr.NFTA_DYNSET_SREG_KEY, 1);
            tokens.Push((e, d));
        }
        while (tokens.Count > 0)
        {
            var (e, d) = tokens.Pop();
            w.EndNested(d);
            w.EndNested(e);
        }
        var inner = w.ToArray();
        var bytes = Message(NftMsgType.NewRule, m =>
        {
            var l = m.BeginNested(NftaRule.Expressions);
            m.WriteRaw(inner);
            m.EndNested(l);
        });
        var ex = Refused(bytes);
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(FirstAttr + 4, ex.Offset);
    }

    /// <summary>
    /// Every corpus message truncated or with bytes flipped either decodes or is refused with a
    /// NetlinkException whose offset lies inside the message; nothing else escapes.
    /// </summary>
    [Fact]
    public void MutatedCorpusMessagesNeverEscapeAsOtherExceptions()
    {
        var corpus = Transcript.All().Select(m => m.Bytes).Where(b => b.Length > 20).ToArray();
        Assert.NotEmpty(corpus);
        var rng = new Random(1234);
        int refused = 0, accepted = 0;
        for (int i = 0; i < 20000; i++)
        {
            var b = (byte[])corpus[rng.Next(corpus.Length)].Clone();
            switch (rng.Next(3))
            {
                case 0:
                    for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(16, b.Length)] = (byte)rng.Next(256);
                    break;
                case 1:
                    Array.Resize(ref b, rng.Next(16, b.Length));
                    BitConverter.GetBytes((uint)b.Length).CopyTo(b, 0);
                    break;
                default:
                    int at = rng.Next(20, b.Length - 1) & ~1;
                    BitConverter.GetBytes((ushort)rng.Next(0, 0x10000)).CopyTo(b, at);
                    break;
            }
            var r = new NetlinkMessageReader(b);
            if (!r.TryRead(out var msg)) continue;
            try
            {
                var rec = NftMessage.Decode(msg);
                NftMessage.EncodeAttributes(new NetlinkWriter(), rec);
                accepted++;
            }
            catch (NetlinkException e)
            {
                // a message too short for its nfgenmsg is blamed at its end (Nft.Netlink's NetlinkMessage.GenMsg)
                Assert.InRange(e.Offset, -1, b.Length < FirstAttr ? b.Length : b.Length - 1);
                refused++;
            }
        }
        Assert.True(refused > 1000 && accepted > 1000, $"refused {refused}, accepted {accepted}");
    }
}
