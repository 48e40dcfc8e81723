using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Bpfilter.Backend.Tests.Codegen;
using static Bpfilter.Backend.Tests.Codegen.ChainTailTests;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// Issue 12: rules appended after a chain's classifier (`nft add rule`) go into the chain tail's program
/// (ChainTailEdit): the running program, its id and its classifier tables stay; verdicts and counters are those of the
/// rules run one by one (the linear program), also after a tail rule is deleted and after a change before the tail
/// recompiles the chain whole.
/// </summary>
[Collection("attach")]
public class ChainTailEditTests
{
    static Ruleset Rules(IEnumerable<Rule> rules) =>
        new(ValueList.Of(new BaseChain("t/edge", EditRig.Xdp, 0, Verdict.Drop, rules.ToValueList())), ValueList<Chain>.Empty, ValueList<Backend.Ir.Set>.Empty);

    static readonly ulong[] Ids = [.. Enumerable.Range(0, N).Select(i => (ulong)i), 1000, 1001];

    /// <summary>Each packet's verdict, and what it adds to each counter, as in a fresh linear program of <paramref name="rules"/>.</summary>
    static void AssertLinear(EditRig rig, Ruleset rules)
    {
        using var oracle = LoadedProgram.Load(ProgramCompiler.Compile(rules, rules.BaseChains.Items, lowering: LoweringPipeline.None));
        var was = Ids.ToDictionary(id => id, rig.Enforcer.Counter);
        foreach (var (name, packet) in Packets) Assert.True(oracle.Run(packet) == rig.Run(packet), name);
        foreach (var id in Ids)
            Assert.Equal(oracle.Counter(id), (rig.Enforcer.Counter(id).Packets - was[id].Packets, rig.Enforcer.Counter(id).Bytes - was[id].Bytes));
    }

    [Fact]
    public void AppendAfterTheClassifierKeepsTheProgramAndItsVerdicts()
    {
        var classified = Enumerable.Range(0, N).Select(Classified).ToList();
        using var rig = new EditRig(Rules(classified));
        rig.Commit(rig.Current);
        Assert.Contains("clsword", rig.Program.Compiled.Disassembly);
        var id = rig.ProgramId;
        AssertLinear(rig, rig.Current);

        // `tcp sport 40000 tcp dport 2000`: no field of the classifier's, so no classifier edit either (compiled whole before)
        var one = Rules([.. classified, Appended[1]]);
        var edited = rig.Commit(one).Edited;
        Assert.Equal(id, rig.ProgramId);
        Assert.Equal(1, edited);
        AssertLinear(rig, one);

        var two = Rules([.. classified, Appended[1], Appended[0]]);
        Assert.Equal(1, rig.Commit(two).Edited);
        Assert.Equal(id, rig.ProgramId);
        Assert.Equal(2, rig.Program.Compiled.Tail!.Rules);
        AssertLinear(rig, two);

        // a tail rule deleted: the tail alone again
        var back = Rules([.. classified, Appended[0]]);
        Assert.Equal(1, rig.Commit(back).Edited);
        Assert.Equal(id, rig.ProgramId);
        AssertLinear(rig, back);

        // a rule before the tail deleted: compiled whole, the tail's rules taken into the chain's program (its tables, when
        // the code stays: the slot empties after them)
        var middle = Rules([.. classified.Where((_, i) => i != 5), Appended[0]]);
        rig.Commit(middle);
        Assert.Equal(0, rig.Program.Compiled.Tail?.Rules ?? 0);
        AssertLinear(rig, middle);
    }
}
