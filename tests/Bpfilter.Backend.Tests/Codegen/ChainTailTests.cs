using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The chain tail (ProgramCompiler.Tail.cs): a chain ending in a classifier tail-calls its tail slot where no classifier
/// rule matched; rules appended after the classifier are compiled alone and loaded into that slot. Every verdict and
/// counter (BPF_PROG_TEST_RUN) is the one the same rules give run one by one (the linear program, no lowering).
/// </summary>
public class ChainTailTests
{
    internal const int N = 200;

    static string Source(int i) => SplitChainTests.Source(i);

    static byte[] From(string src, ushort dport = 1000) => SplitChainTests.From(src, dport);

    /// <summary>SplitChainTests' rule i, accepting when i is even: the classifier gets both verdicts.</summary>
    internal static Rule Classified(int i) => SplitChainTests.Alternating(i) with { Verdict = i % 2 == 0 ? Verdict.Accept : Verdict.Drop };

    /// <summary>Appended after the classifier: an address no classifier rule has, and a port every `!= 9` rule also takes.</summary>
    internal static readonly Rule[] Appended =
    [
        Counted(1000, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4("10.9.9.9"))),
        Counted(1001, Verdict.Accept, Matcher.Eq(Fields.Tcp.Sport, U16(40000)), Matcher.Eq(Fields.Tcp.Dport, U16(2000))),
    ];

    /// <summary>First, middle and last classifier rules, the tail's rules, a packet both a classifier rule and the tail match, none.</summary>
    internal static readonly (string Name, byte[] Packet)[] Packets =
    [
        ("first", From(Source(0))), ("middle", From(Source(N / 2 + 1))), ("last", From(Source(N - 1))),
        ("tail", From("10.9.9.9")), ("tail second", From(Source(1), 2000)), ("classifier before tail", From(Source(3), 2000)),
        ("no match", From("10.250.0.1", 1)),
    ];

    static BaseChain Chain(Hook hook, IEnumerable<Rule> rules) => new("t/base", hook, 0, Verdict.Drop, rules.ToValueList());

    static Hook HookOf(string name) => name switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };

    /// <summary>Each packet's verdict, and what it added to each counter, in <paramref name="oracle"/> (fresh) and <paramref name="p"/>.</summary>
    static void AssertSameAs(LoadedProgram oracle, LoadedProgram p, IReadOnlyList<ulong> counters)
    {
        var was = counters.ToDictionary(id => id, p.Counter);
        foreach (var (name, packet) in Packets) Assert.True(oracle.Run(packet) == p.Run(packet), name);
        foreach (var id in counters)
            Assert.Equal(oracle.Counter(id), (p.Counter(id).Packets - was[id].Packets, p.Counter(id).Bytes - was[id].Bytes));
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("netfilter")]
    public void AppendedRulesRunInTheTailSlotAfterTheClassifierInFirstMatchOrder(string hook)
    {
        var rules = Enumerable.Range(0, N).Select(Classified).ToArray();
        var rs = new Ruleset(ValueList.Of(Chain(HookOf(hook), rules)), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        using var p = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items));
        Assert.Contains("clsword", p.Compiled.Disassembly);
        Assert.Equal((ProgramCompiler.TailSlot, N, 0), (p.Compiled.Tail!.Slot, p.Compiled.Tail.From, p.Compiled.Tail.Rules));
        var ids = Enumerable.Range(0, N).Select(i => (ulong)i).Concat([1000UL, 1001UL]).ToList();

        // the slot empty: the classifier then the policy, as the rules alone
        using (var before = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None)))
            AssertSameAs(before, p, ids);

        var grown = Chain(HookOf(hook), [.. rules, .. Appended]);
        var tail = ProgramCompiler.CompileTail(rs, grown, p.Compiled);
        Assert.NotNull(tail);
        Assert.Equal([1000UL, 1001UL], tail.CounterSlots.Keys.Order());
        Assert.DoesNotContain(tail.CounterSlots.Values, s => p.Compiled.CounterSlots.Values.Contains(s));
        var withTail = p.Compiled with
        {
            Tail = p.Compiled.Tail with { Rules = Appended.Length, Code = tail.Instructions },
            CounterSlots = p.Compiled.CounterSlots.Concat(tail.CounterSlots).ToDictionary(),
            CounterSlotsUsed = tail.CounterSlotsUsed,
        };
        var id = p.Program.Id;
        p.SwapTail(p.LoadTail(tail)!, withTail);
        Assert.Equal(id, p.Program.Id);
        var all = new Ruleset(ValueList.Of(grown), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);
        using (var oracle = LoadedProgram.Load(ProgramCompiler.Compile(all, all.BaseChains.Items, lowering: LoweringPipeline.None)))
            AssertSameAs(oracle, p, ids);
        Assert.Equal(1UL, p.Counter(1000).Packets);
        Assert.Equal(1UL, p.Counter(1001).Packets); // `tail second` only: `classifier before tail` stopped at rule 3
        Assert.Equal(2UL, p.Counter(3).Packets);

        // emptied again: the policy follows the classifier
        p.SwapTail(null, p.Compiled with { Tail = p.Compiled.Tail! with { Rules = 0, Code = [] } });
        using (var before = LoadedProgram.Load(ProgramCompiler.Compile(rs, rs.BaseChains.Items, lowering: LoweringPipeline.None)))
            Assert.Equal(before.Run(From("10.9.9.9")), p.Run(From("10.9.9.9")));
        Assert.Equal(1UL, p.Counter(1000).Packets);
    }
}
