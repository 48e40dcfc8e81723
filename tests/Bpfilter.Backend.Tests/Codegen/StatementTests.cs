using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>Statements beyond counters, kernel-log `log`, quotas, limits, object maps, set updates and a constant mark at tc are in the IR; until the backend runs them it refuses them by name.</summary>
public class StatementTests
{
    public static TheoryData<Statement> Unsupported() =>
    [
        new LogStatement("drop: ", Group: 3),
        new MetaSetStatement(MetaSetKey.Priority, new StatementValue.Immediate(Value.FromUInt(1, 32))),
        new CtSetStatement(CtKey.Mark, new StatementValue.FromKey(Fields.Mark)),
        new NotrackStatement(),
    ];

    [Theory]
    [MemberData(nameof(Unsupported))]
    public void UnsupportedStatementsAreRefusedNamingRuleAndStatement(Statement s)
    {
        var rule = new Rule(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(22))), ValueList.Of(s), Verdict.Accept) { Origin = "inet t c handle 7" };
        var rs = Ruleset(Xdp, Verdict.Accept, [rule]);
        var e = Assert.Throws<CodegenException>(() => ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Equal($"inet t c handle 7: statement '{s}' is not supported by the BPF backend", e.Message);
    }

    [Fact]
    public void StatementOrderIsPartOfTheRule()
    {
        var limit = new LimitStatement(1, TimeSpan.FromSeconds(1), 0);
        var counter = new CounterStatement(4);
        var countAll = new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(counter, limit), Verdict.Accept);
        var countPassed = new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(limit, counter), Verdict.Accept);
        Assert.NotEqual(countAll, countPassed);
        Assert.NotEqual(countAll.Shape, countPassed.Shape);
        Assert.Equal("counter #4 limit rate 1/second #0 accept", countAll.ToString());
        Assert.Equal("limit rate 1/second #0 counter #4 accept", countPassed.ToString());
        Assert.Equal(4UL, countPassed.CounterId);
        Assert.Throws<ArgumentException>(() => new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(Verdict.Drop), Verdict.Accept));
    }

    [Fact]
    public void CounterStatementsCompileAsTheCounterShorthand()
    {
        var m = Matcher.Eq(Fields.Udp.Dport, U16(53));
        var a = Ruleset(Xdp, Verdict.Accept, [Counted(7, Verdict.Drop, m)]);
        var b = Ruleset(Xdp, Verdict.Accept, [new Rule(ValueList.Of(m), ValueList.Of<Statement>(new CounterStatement(7)), Verdict.Drop)]);
        Assert.Equal(a, b);
        Assert.Equal(ProgramCompiler.Compile(a, a.BaseChains.Items).Disassembly, ProgramCompiler.Compile(b, b.BaseChains.Items).Disassembly);
    }
}
