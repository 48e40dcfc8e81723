using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Bytecode.Tests;

/// <summary>
/// Records built in code, as the daemon builds its dumps, encode to exactly what kernel 6.18 sent for
/// `nft list ruleset` after `add table inet t; add chain inet t c { type filter hook input priority 0;
/// policy accept; }; add rule inet t c ip saddr 10.0.0.1 counter accept comment "hi"`.
/// </summary>
public class ObjectBytesTests
{
    const string KernelTable =
            "38000000000a0200000000007518000001000002060001007400000008000300000000010c0004000000000000000001"
            + "0800020000000000";
    const string KernelChain =
            "68000000030a0200000000007518000001000002060001007400000006000300630000000c0002000000000000000001"
            + "140004000800010000000001080002000000000008000500000000010b00070066696c746572000008000a0000000001"
            + "0800060000000001";
    const string KernelRule =
            "4c010000060a0208000000007518000001000002060001007400000006000200630000000c0003000000000000000002"
            + "1001040024000100090001006d6574610000000014000200080002000000000f08000100000000012c00010008000100"
            + "636d700020000200080001000000000108000200000000000c0003000500010002000000340001000c0001007061796c"
            + "6f6164002400020008000100000000010800020000000001080003000000000c08000400000000042c00010008000100"
            + "636d700020000200080001000000000108000200000000000c000300080001000a0000012c0001000c000100636f756e"
            + "746572001c0002000c00010000000000000000000c0002000000000000000000300001000e000100696d6d6564696174"
            + "650000001c0002000800010000000000100002000c0002000800010000000001090007000003686900000000";

    static string Hex(object record, NftMsgType type, NlmFlags flags)
    {
        var w = new NetlinkWriter();
        NftMessage.Write(w, type, flags, seq: 0, portId: 0x1875, family: NfProto.Inet, resId: 2, record);
        return Convert.ToHexString(w.WrittenSpan).ToLowerInvariant();
    }

    [Fact]
    public void TableBuiltInCodeMatchesTheKernelDump()
    {
        var t = new Table { Family = NfProto.Inet, Name = "t", Use = 1, Handle = 1, Flags = 0 };
        Assert.Equal(KernelTable, Hex(t, NftMsgType.NewTable, NlmFlags.Multi));
    }

    [Fact]
    public void BaseChainBuiltInCodeMatchesTheKernelDump()
    {
        var c = new Chain
        {
            Family = NfProto.Inet, Table = "t", Name = "c", Handle = 1,
            Hook = new ChainHook(NfHooks.LocalIn, 0), Policy = Verdict.Accept, Type = "filter",
            Flags = (uint)NftChainFlags.Base, Use = 1,
        };
        Assert.Equal(KernelChain, Hex(c, NftMsgType.NewChain, NlmFlags.Multi));
    }

    [Fact]
    public void RuleBuiltInCodeMatchesTheKernelDump()
    {
        var r = new Rule
        {
            Family = NfProto.Inet, Table = "t", Chain = "c", Handle = 2,
            Expressions =
            [
                new MetaExpr(MetaExpr.KeyNfProto, 1),
                new CmpExpr(1, CmpExpr.Eq, new ValueData([2])),
                new PayloadExpr(PayloadExpr.BaseNetwork, 12, 4, 1),
                new CmpExpr(1, CmpExpr.Eq, new ValueData([10, 0, 0, 1])),
                new CounterExpr(0, 0),
                new ImmediateExpr(0, new VerdictData(Verdict.AcceptVerdict)),
            ],
            UserData = UserData.WithComment("hi"),
        };
        Assert.Equal("hi", r.Comment);
        Assert.Equal(KernelRule, Hex(r, NftMsgType.NewRule, NlmFlags.Multi | NlmFlags.Append));
    }

    [Fact]
    public void RuleAsNftSentItEchoesInKernelForm()
    {
        // `nft -e -a add rule inet f in ip saddr 1.1.1.4 counter drop comment "echoed"`: nft's NEWRULE
        // (its order, nest flags, NFTA_RULE_ID) and the kernel's echo of it
        var msgs = Transcript.Read(Path.Combine(Transcript.Directory, "rules.txt"))
            .Where(m => m.Command.Contains("\"echoed\"") && m.Bytes[4] == (byte)NftMsgType.NewRule).ToList();
        var sent = msgs.First(m => !m.FromKernel);
        var echo = msgs.First(m => m.FromKernel && Decode(m.Bytes).Comment == "echoed");
        Assert.NotEqual(Convert.ToHexString(sent.Bytes), Convert.ToHexString(echo.Bytes));
        var rule = Decode(sent.Bytes);
        var kernel = Decode(echo.Bytes);
        Assert.Equal("echoed", rule.Comment);
        // what the kernel adds: the handle, and counter values (nft sends an empty counter)
        var echoed = rule with
        {
            Handle = kernel.Handle, Position = kernel.Position, Id = null,
            Expressions = rule.Expressions!.Select(e => e is CounterExpr ? new CounterExpr(0, 0) : e).ToList(),
        };
        var h = NlMsgHeader.Read(echo.Bytes);
        var w = new NetlinkWriter();
        NftMessage.Write(w, NftMsgType.NewRule, h.Flags, h.Seq, h.Pid, echo.Bytes[16], NfGenMsg.Read(echo.Bytes.AsSpan(16)).ResId,
            echoed, Wire.WireFormat.Kernel);
        Assert.Equal(Convert.ToHexString(echo.Bytes), Convert.ToHexString(w.WrittenSpan));
    }

    static Rule Decode(byte[] bytes)
    {
        var r = new NetlinkMessageReader(bytes);
        Assert.True(r.TryRead(out var msg));
        return Rule.Decode(msg);
    }
}
