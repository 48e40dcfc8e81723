using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Concatenations with a prefix or range in a field before the last (nft's `ip saddr . tcp dport` interval
/// sets, integration/corpus/packets/concatenations.nft): an element matches when every field is in its part,
/// as nf_tables' pipapo set decides.
/// </summary>
public class ConcatIntervalTests
{
    private static byte[] Tcp4(string src, ushort dport) => PacketBuilder.Ether().Ipv4(src, "198.18.2.2").Tcp(40000, dport);
    private static SetElement Parts(params KeyPart[] parts) => new(parts.ToValueList());
    private static readonly MatchKey Key = new(Fields.Ip.Saddr, Fields.Tcp.Dport);

    private static Backend.Ir.Set NetsPorts() => new("nets-ports", Key, SetData.NoData, ValueList.Of(
        Parts(new KeyPart.Prefix(V4("198.19.8.0"), 24), new KeyPart.Range(U16(1000), U16(1999))),
        Parts(new KeyPart.Prefix(V4("198.19.9.0"), 24), new KeyPart.Exact(U16(22))),
        Parts(new KeyPart.Range(V4("198.19.10.250"), V4("198.19.11.5")), new KeyPart.Prefix(U16(0x5000), 8))));

    [Theory]
    [InlineData("198.19.8.77", 1500, true)]
    [InlineData("198.19.8.0", 1000, true)]
    [InlineData("198.19.8.255", 1999, true)]
    [InlineData("198.19.8.77", 999, false)]
    [InlineData("198.19.8.77", 2000, false)]
    [InlineData("198.19.8.77", 443, false)]
    [InlineData("198.19.7.255", 1500, false)]
    [InlineData("198.19.9.1", 22, true)]
    [InlineData("198.19.9.1", 1500, false)]   // each field against its own element: no mixing of elements
    [InlineData("198.19.8.1", 22, false)]
    [InlineData("198.19.10.250", 0x50ff, true)]
    [InlineData("198.19.11.5", 0x5000, true)]
    [InlineData("198.19.10.249", 0x5000, false)]
    [InlineData("198.19.11.6", 0x5000, false)]
    [InlineData("198.19.11.0", 0x5100, false)]
    public void EveryFieldInItsPart(string src, int dport, bool member)
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Key, "nets-ports"))], sets: [NetsPorts()]);
        Assert.Equal(member ? XdpDrop : XdpPass, p.Run(Tcp4(src, (ushort)dport)));
    }

    [Fact]
    public void ElementsAddedAndRemovedAtRunTime()
    {
        var set = NetsPorts();
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Key, "nets-ports"))], sets: [set]);
        var extra = Parts(new KeyPart.Prefix(V4("198.19.20.0"), 30), new KeyPart.Range(U16(5), U16(6)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.19.20.3", 6)));
        Assert.True(p.AddElement("nets-ports", extra));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.19.20.3", 6)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.19.20.4", 6)));
        Assert.True(p.RemoveElement("nets-ports", extra));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.19.20.3", 6)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.19.8.3", 1001)));
    }

    [Fact]
    public void TooWideALeadingFieldIsRefused()
    {
        var set = new Backend.Ir.Set("wide", Key, SetData.NoData, ValueList.Of(
            Parts(new KeyPart.Prefix(V4("10.0.0.0"), 8), new KeyPart.Exact(U16(22)))));
        var rs = Ruleset(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Key, "wide"))], sets: [set]);
        var e = Assert.Throws<CodegenException>(() => Loader.LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items)));
        Assert.Contains("set 'wide'", e.Message);
        Assert.Contains("10.0.0.0/8", e.Message);
    }
}
