using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Ir;

public class IrTests
{
    [Fact]
    public void RuleReadsLikeNft()
    {
        var rule = new Rule(ValueList.Of(
                Matcher.Prefix(Fields.Ip.Saddr, Value.Ipv4("10.0.0.0"), 8),
                Matcher.Eq(Fields.Tcp.Dport, Value.FromUInt(22, 16)),
                Matcher.Mask(Fields.Tcp.Flags, Value.FromUInt(Fields.Tcp.Syn | Fields.Tcp.Ack, 8), Value.FromUInt(Fields.Tcp.Syn, 8))),
            Verdict.Drop, CounterId: 7);
        Assert.Equal("ip saddr 10.0.0.0/8 tcp dport == 22 tcp flags & 0x12 == 0x02 counter #7 drop", rule.ToString());
    }

    [Fact]
    public void SameShapeRulesCompareEqualByShapeButNotByValue()
    {
        var a = new Rule(Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, Value.Ipv4("198.18.0.1")));
        var b = new Rule(Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, Value.Ipv4("198.18.0.2")));
        var a2 = new Rule(Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, Value.Ipv4("198.18.0.1")));
        Assert.Equal(a.Shape, b.Shape);
        Assert.Equal(a.Shape.GetHashCode(), b.Shape.GetHashCode());
        Assert.NotEqual(a, b);
        Assert.Equal(a, a2);
        Assert.Equal(a.GetHashCode(), a2.GetHashCode());
    }

    [Fact]
    public void RawFieldIdentityIgnoresName()
    {
        var raw = new PayloadField(HeaderProtocol.Ip, PayloadBase.Network, 96, 32);
        Assert.Equal(Fields.Ip.Saddr, raw);
        Assert.Equal("ip saddr", raw.ToString());
        Assert.Equal("@nh,96,32", PayloadField.Raw(PayloadBase.Network, 96, 32).ToString());
        Assert.NotEqual<Field>(Fields.Ip.Saddr, PayloadField.Raw(PayloadBase.Network, 96, 32));
    }

    [Fact]
    public void ValueWidthMustMatchKey()
    {
        Assert.Throws<ArgumentException>(() => Matcher.Eq(Fields.Tcp.Dport, Value.FromUInt(22, 8)));
        var concat = new MatchKey(Fields.Ip.Saddr, Fields.Tcp.Dport);
        Assert.Equal(6, concat.Bytes);
        Assert.Equal("ip saddr . tcp dport", concat.ToString());
    }

    [Fact]
    public void RulesetPrints()
    {
        var set = new Set("blocklist", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(
            SetElement.Exact(Value.Ipv4("198.18.0.9")),
            new SetElement(ValueList.Of<KeyPart>(new KeyPart.Prefix(Value.Ipv4("10.1.0.0"), 16)))));
        var chain = new BaseChain("filter/in", new XdpIngress("veth0"), 0, Verdict.Accept, ValueList.Of(
            new Rule(Verdict.Drop, Matcher.InSet(Fields.Ip.Saddr, "blocklist")),
            new Rule(Verdict.Jump("filter/tcp"), Matcher.Eq(Fields.L4Proto, Value.FromUInt(6, 8)))));
        var ruleset = new Ruleset(ValueList.Of(chain), ValueList.Of(new Chain("filter/tcp", ValueList<Rule>.Empty)), ValueList.Of(set));
        Assert.Equal(
            "set blocklist { type ip saddr; elements = { 198.18.0.9, 10.1.0.0/16 } }\n" +
            "chain filter/in (xdp ingress device veth0, priority 0) {\n" +
            "    ip saddr @blocklist drop\n" +
            "    meta l4proto == 6 jump filter/tcp\n" +
            "    policy accept\n" +
            "}\n" +
            "chain filter/tcp {\n" +
            "}\n", ruleset.ToString());
    }
}
