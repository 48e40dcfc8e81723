using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Tests;

/// <summary>
/// NFTA_EXPR_DATA contents exactly as the kernel (6.18) dumped them in the transcript corpus, against
/// the record built in code: the record encodes to those bytes, and the bytes decode to that record.
/// </summary>
public class ExpressionBytesTests
{
    static ValueData V(string hex) => new(Convert.FromHexString(hex));
    static VerdictData Verd(int code, string? chain = null) => new(new Verdict(code, chain));

    public static TheoryData<string, string, Expression> Cases => new()
    {
        { "payload", "08000100000000010800020000000001080003000000000c0800040000000004", new PayloadExpr(PayloadExpr.BaseNetwork, 12, 4, 1) },
        { "cmp", "080001000000000108000200000000000c0003000600010000500000", new CmpExpr(1, CmpExpr.Eq, V("0050")) },
        { "meta", "08000200000000100800010000000001", new MetaExpr(MetaExpr.KeyL4Proto, 1) },
        { "immediate", "08000100000000020c000200060001001f900000", new ImmediateExpr(2, V("1f90")) },
        { "immediate", "0800010000000000100002000c0002000800010000000001", new ImmediateExpr(0, Verd(Verdict.Accept)) },
        { "immediate", "08000100000000001c0002001800020008000100fffffffd0b0002007461726765740000", new ImmediateExpr(0, Verd(Verdict.Jump, "target")) },
        { "bitwise", "08000100000000010800020000000001080003000000000208000600000000000c000400060001000fff00000c0005000600010000000000",
            new BitwiseExpr(1, 1, 2, BitwiseExpr.OpMaskXor, V("0fff"), V("0000")) },
        { "lookup", "0b0001005f5f6d6170300000080002000000000108000300000000010800050000000000", new LookupExpr("__map0", null, 1, 1, 0) },
        { "lookup", "0b0001005f5f73657430000008000200000000010800050000000000", new LookupExpr("__set0", null, 1, null, 0) },
        { "range", "080001000000000108000200000000010c00030006000100000100000c0004000600010003ff0000", new RangeExpr(1, RangeExpr.OpNeq, V("0001"), V("03ff")) },
        { "counter", "0c00010000000000000000000c0002000000000000000000", new CounterExpr(0, 0) },
        { "ct", "08000100000000010800020000000000", new CtExpr(CtExpr.KeyState, 1) },
        { "byteorder", "08000100000000010800020000000001080003000000000108000400000000040800050000000004", new ByteorderExpr(1, 1, ByteorderExpr.OpHton, 4, 4) },
        { "exthdr", "080001000000000105000200020000000800030000000002080004000000000208000500000000000800060000000001",
            new ExthdrExpr(2, DReg: 1, Offset: 2, Len: 2, Flags: 0, Op: ExthdrExpr.OpTcpOpt) },
        { "limit", "0c000100000000000000000a0c0002000000000000000001080003000000000508000400000000000800050000000000", new LimitExpr(10, 1, 5, LimitExpr.TypePackets, 0) },
        { "log", "09000200696e3a20000000000800050000000004080006000000002f", new LogExpr(Prefix: "in: ", Level: 4, Flags: 0x2f) },
        { "log", "060001000002000008000300000000640600040000050000", new LogExpr(Group: 2, Snaplen: 100, QThreshold: 5) },
        { "reject", "08000100000000020500020001000000", new RejectExpr(RejectExpr.TypeIcmpxUnreach, 1) },
        { "nat", "08000100000000010800020000000002080003000000000108000400000000010800070000000001", new NatExpr(NatExpr.TypeDnat, 2, 1, 1, Flags: 1) },
        { "masq", "080001000000000208000200000000010800030000000002", new MasqExpr(2, 1, 2) },
        { "redir", "080001000000000108000200000000010800030000000002", new RedirExpr(1, 1, 2) },
        { "quota", "0c00010000000000064000000c0004000000000000a000000800020000000000", new QuotaExpr(100 << 20, 0, 10 << 20) },
        { "fib", "080001000000000108000200000000030800030000000002", new FibExpr(1, 3, 2) },
        { "hash", "080001000000000208000200000000010800030000000004080004000000000408000500deadbeef0800070000000000",
            new HashExpr(1, 4, SReg: 2, Len: 4, Seed: 0xdeadbeef, Type: HashExpr.TypeJenkins) },
        { "numgen", "0800010000000001080002000000000208000300000000010800040000000000", new NumgenExpr(1, 2, NumgenExpr.TypeRandom, 0) },
        { "rt", "08000200000000010800010000000001", new RtExpr(1, 1) },
        { "socket", "08000100000000000800020000000001", new SocketExpr(0, 1) },
        { "tproxy", "080001000000000208000200000000010800030000000002", new TproxyExpr(2, 1, 2) },
        { "osf", "050002000000000008000300000000000800010000000001", new OsfExpr(1, 0, 0) },
        { "xfrm", "0800010000000001080002000000000505000300000000000800040000000000", new XfrmExpr(1, 5, 0, 0) },
        { "synproxy", "0600010005b400000500020007000000080003000000000f", new SynproxyExpr(1460, 7, 15) },
        { "connlimit", "080001000000000a0800020000000001", new ConnlimitExpr(10, 1) },
        { "dup", "08000100000000010800020000000002", new DupExpr(1, 2) },
        { "fwd", "0800010000000001", new FwdExpr(1) },
        { "objref", "08000200636e74000800010000000001", new ObjRefExpr(1, "cnt") },
        { "objref", "0800030000000001070004006f6d0000", new ObjRefExpr(null, null, 1, "om") },
        { "dynset", "080004000000000108000300000000010800010064796e000c00060000000000000027100800090000000000",
            new DynsetExpr("dyn", null, DynsetExpr.OpUpdate, 1, Timeout: 10000, Flags: 0) },
    };

    static byte[] EncodeData(Expression e, WireFormat f)
    {
        var w = new NetlinkWriter();
        e.EncodeData(w, f);
        return w.ToArray();
    }

    static Expression DecodeData(string name, byte[] data)
    {
        // wrap in an expression nest the way a rule carries it, and decode through the codec
        var w = new NetlinkWriter();
        var t = w.BeginNested(NftaList.Elem);
        w.PutString(NftaExpr.Name, name);
        w.PutRaw(NftaExpr.Data | NlaFlags.Nested, data);
        w.EndNested(t);
        var bytes = w.ToArray();
        var r = new AttributeReader(bytes, 0);
        Assert.True(r.TryRead(out var a));
        return ExpressionCodec.Decode(a);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RecordEncodesToKernelBytes(string name, string hex, Expression expected)
    {
        Assert.Equal(name, expected.Name);
        Assert.Equal(hex, Convert.ToHexString(EncodeData(expected, WireFormat.Kernel)).ToLowerInvariant());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelBytesDecodeToRecord(string name, string hex, Expression expected)
    {
        var decoded = DecodeData(name, Convert.FromHexString(hex));
        Assert.IsType(expected.GetType(), decoded);
        Assert.False(decoded.Layout!.HasUnknown);
        // same bytes from the decoded record in both formats means the same values as the expected one
        Assert.Equal(hex, Convert.ToHexString(EncodeData(decoded, WireFormat.Kernel)).ToLowerInvariant());
        Assert.Equal(hex, Convert.ToHexString(EncodeData(decoded, WireFormat.AsDecoded)).ToLowerInvariant());
    }

    [Fact]
    public void DecodedValuesAreTyped()
    {
        var p = Assert.IsType<PayloadExpr>(DecodeData("payload", Convert.FromHexString("08000100000000010800020000000001080003000000000c0800040000000004")));
        Assert.Equal((1u, 12u, 4u, (uint?)1u), (p.Base, p.Offset, p.Len, p.DReg));
        var imm = Assert.IsType<ImmediateExpr>(DecodeData("immediate", Convert.FromHexString("08000100000000001c0002001800020008000100fffffffd0b0002007461726765740000")));
        Assert.Equal(new Verdict(Verdict.Jump, "target") { Layout = imm.Verdict!.Layout }, imm.Verdict);
        var cmp = Assert.IsType<CmpExpr>(DecodeData("cmp", Convert.FromHexString("080001000000000108000200000000000c0003000600010000500000")));
        Assert.Equal(new byte[] { 0, 0x50 }, cmp.Value);
    }

    [Fact]
    public void UnknownAttributeInsideKnownKindIsKeptInPlace()
    {
        // meta with an extra attribute 9 between key and dreg
        var data = Convert.FromHexString("0800020000000010080009001234567808000100" + "00000001");
        var e = Assert.IsType<MetaExpr>(DecodeData("meta", data));
        Assert.True(e.Layout!.HasUnknown);
        Assert.Equal(data, EncodeData(e, WireFormat.AsDecoded));
        // the kernel's own form drops what it does not know
        Assert.Equal("08000200000000100800010000000001", Convert.ToHexString(EncodeData(e, WireFormat.Kernel)).ToLowerInvariant());
    }

    [Fact]
    public void UnknownKindStaysOpaqueAndRoundTrips()
    {
        var data = Convert.FromHexString("080001000000002a0500020007000000");
        var e = Assert.IsType<OpaqueExpr>(DecodeData("futurekind", data));
        Assert.Equal("futurekind", e.Name);
        Assert.Equal(data, EncodeData(e, WireFormat.AsDecoded));
    }

    [Fact]
    public void ChangedValueIsWrittenInsteadOfTheDecodedOne()
    {
        var e = Assert.IsType<CmpExpr>(DecodeData("cmp", Convert.FromHexString("080001000000000108000200000000000c0003000600010000500000")));
        var changed = e with { Op = CmpExpr.Neq };
        Assert.Equal("080001000000000108000200000000010c0003000600010000500000", Convert.ToHexString(EncodeData(changed, WireFormat.AsDecoded)).ToLowerInvariant());
    }
}
