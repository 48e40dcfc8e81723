using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Daemon.Enforcement;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Whether the BPF ruleset reads ct, with each chain's answer kept from the previous commit (<see cref="CtReads"/>),
/// is what a walk of every rule answers, over random appends, inserts, deletes and replaces of rules that read ct
/// (a matcher, a verdict map's key) or not, in base and regular chains; an append folds the new rule alone.
/// </summary>
public sealed class CtReadsTests
{
    static readonly string[] Chains = ["t/in", "t/out", "t/r"];
    static readonly MatchKey Dport = new(Fields.Udp.Dport), CtState = new(new CtField(CtReadKey.State));

    static Rule NewRule(Random rng, ulong id) => rng.Next(40) switch
    {
        0 => new Rule(ValueList.Of(new Matcher(CtState, new Compare(CompareOp.Eq, Value.FromUInt(2, 32)))), Verdict.Accept, id),
        1 => new Rule(ValueList<Matcher>.Empty, Verdict.VMap(CtState, "t/vm"), id),
        _ => new Rule(ValueList.Of(new Matcher(Dport, new Compare(CompareOp.Eq, Value.FromUInt((ulong)rng.Next(65536), 16)))), Verdict.Drop, id),
    };

    [Fact]
    public void KeptAnswersAreWhatAWalkOfEveryRuleAnswers()
    {
        var rng = new Random(4);
        ulong id = 1;
        var rules = Chains.ToDictionary(c => c, _ => Enumerable.Range(0, 10).Select(_ => NewRule(rng, id++)).Where(r => !ReadsCt(r)).ToList());
        var reads = new ChainFolds<CtReads>();
        int appendsAlone = 0, yes = 0, no = 0;
        for (var step = 0; step < 600; step++)
        {
            var list = rules[Chains[rng.Next(Chains.Length)]];
            var append = false;
            switch (rng.Next(6))
            {
                case 0 or 1 or 2: list.Add(NewRule(rng, id++)); append = true; break;
                case 3: list.Insert(rng.Next(list.Count + 1), NewRule(rng, id++)); break;
                // deletes take out rules that read ct more often, so that the answer turns back to no
                case 4 when list.Count > 0: list.RemoveAt(list.FindIndex(ReadsCt) is >= 0 and var i && rng.Next(2) == 0 ? i : rng.Next(list.Count)); break;
                case 5 when list.Count > 0: list[rng.Next(list.Count)] = NewRule(rng, id++); break;
            }
            var ruleset = new Ruleset(
                ValueList.Of(new BaseChain("t/in", new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Input, 0), 0, Verdict.Accept, rules["t/in"].ToValueList()),
                    new BaseChain("t/out", new NetfilterHook(NfFamily.Ipv4, NfHookPoint.Output, 0), 0, Verdict.Accept, rules["t/out"].ToValueList())),
                ValueList.Of(new Chain("t/r", rules["t/r"].ToValueList())), ValueList<Set>.Empty);
            var folded = reads.RulesFolded;
            var chains = reads.ChainsFolded;
            reads.Retain(ruleset);
            var walked = ConntrackReference.ReadsCt(ruleset, null);
            var kept = ConntrackReference.ReadsCt(ruleset, reads);
            Assert.Equal(walked, kept);
            if (walked) yes++;
            else no++;
            if (append && reads.ChainsFolded == chains && reads.RulesFolded == folded + 1) appendsAlone++;
        }
        Assert.True(yes > 50 && no > 50, $"{yes} yes, {no} no");
        Assert.True(appendsAlone > 50, $"{appendsAlone} appends folded alone");
        // a set keyed on ct reads it whatever the rules
        var withSet = new Ruleset(ValueList<BaseChain>.Empty, ValueList<Chain>.Empty,
            ValueList.Of(new Set("t/s", CtState, SetData.NoData, ValueList<SetElement>.Empty)));
        Assert.True(ConntrackReference.ReadsCt(withSet, reads));
    }

    static bool ReadsCt(Rule r) => CtReads.ReadBy(r);
}
