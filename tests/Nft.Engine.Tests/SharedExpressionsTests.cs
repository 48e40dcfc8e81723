using Nft.Bytecode.Expressions;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// A batch's rules that send an expression byte for byte alike hold one record of it (the same payload and meta loads,
/// their compares and the counter in every rule of a same-shape load); what differs, and the verdict (bound to the
/// table's chains), is each rule's own. The rules are as before: same expressions by value, same state bytes
/// (<see cref="StateBytesTests"/>).
/// </summary>
public class SharedExpressionsTests
{
    [Fact]
    public void RulesSendingTheSameExpressionBytesHoldOneRecordOfIt()
    {
        var ep = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), RefuseOutOfScope = false });
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"),
            AddRule(4, "t", "c", StateEncodeScaleTests.SameShape(1)), AddRule(5, "t", "c", StateEncodeScaleTests.SameShape(2))), Port));
        var rules = ep.Ruleset.Tables[0].Chains[0].Rules;
        var (a, b) = (rules[0].Expressions, rules[1].Expressions);
        Assert.Equal(8, a.Count);
        Assert.Equal(8, b.Count);
        // payload ip saddr, meta l4proto, its compare with udp, payload udp dport, counter: the same bytes in both rules
        foreach (int i in new[] { 0, 2, 3, 4, 6 }) Assert.Same(a[i], b[i]);
        // the address and port compares differ; the verdict is bound per rule
        foreach (int i in new[] { 1, 5 }) Assert.NotEqual(a[i], b[i]);
        Assert.NotSame(a[7], b[7]);
        Assert.Equal(a[7], b[7]);
        Assert.IsType<CounterExpr>(a[6]);
    }
}
