using Nft.Bytecode.Expressions;

namespace Nft.Kernel.Tests;

/// <summary>
/// The kernel copy's hidden `last` expressions (one before each expression that may run a limit) map back to the
/// caller's expression indexes, by which counters and quotas are read; a rule placed without them aligns one to one.
/// </summary>
public class HiddenLastTests
{
    static readonly List<Expression> Caller =
    [
        new LastExpr(), // the user's own `last`, before a limit
        new LimitExpr(1, 60, 3),
        new LookupExpr("s", null, 1),
        new CounterExpr(),
    ];

    [Fact]
    public void TheKernelCopyHasALastBeforeEachLimitOrLookupAndAlignsBack()
    {
        var kernel = HiddenLast.Insert(Caller);
        Assert.Equal(["last", "last", "limit", "last", "lookup", "counter"], kernel.Select(e => e.Name));
        Assert.Equal([(0, false), (1, true), (1, false), (2, true), (2, false), (3, false)], HiddenLast.Align(Caller, kernel));
    }

    [Fact]
    public void ARuleTooLongForThemGoesAsWrittenAndAlignsOneToOne()
    {
        var longRule = Enumerable.Range(0, HiddenLast.MaxCallerExpressions - 1).Select(_ => (Expression)new CounterExpr()).Append(new LimitExpr(1, 60, 3)).ToList();
        Assert.Equal(longRule.Count + 1, HiddenLast.Insert(longRule).Count);
        longRule.Add(new CounterExpr());
        var kernel = HiddenLast.Insert(longRule);
        Assert.Equal(longRule.Select(e => e.Name), kernel.Select(e => e.Name));
        Assert.All(HiddenLast.Align(longRule, kernel).Select((a, i) => (a, i)), x => Assert.Equal((x.i, false), x.a));
    }

    [Fact]
    public void ARuleWithAnXtablesMatchOrTargetGoesAsWritten()
    {
        // an xt_u32 info is 1,984 bytes: two and a limit are near nf_tables' 4096-byte rule limit, a `last` could pass it
        List<Expression> rule = [new MatchExpr("u32", 0, new byte[1984]), new MatchExpr("u32", 0, new byte[1984]), new LimitExpr(1, 60, 3)];
        Assert.Equal(rule.Select(e => e.Name), HiddenLast.Insert(rule).Select(e => e.Name));
        List<Expression> target = [new LimitExpr(1, 60, 3), new TargetExpr("MARK", 2, new byte[8])];
        Assert.Equal(target.Select(e => e.Name), HiddenLast.Insert(target).Select(e => e.Name));
        Assert.True(HiddenLast.Fits(Caller));
    }

    [Fact]
    public void ARulePlacedWithoutThemAlignsOneToOne() =>
        Assert.Equal([(0, false), (1, false), (2, false), (3, false)], HiddenLast.Align(Caller, Caller));
}
