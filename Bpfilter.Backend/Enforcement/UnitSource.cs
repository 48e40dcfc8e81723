using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Everything an attach point's program is compiled from: its base chains, the regular chains they
/// reach (jump, goto, verdict map elements) and the sets their rules read (object maps too). Two equal sources compile
/// to the same program, so an attach point whose source did not change keeps its program.
/// </summary>
public sealed record UnitSource(ValueList<BaseChain> Chains, ValueList<Chain> Reached, ValueList<Set> Sets)
{
    public static UnitSource Of(Ruleset ruleset, IReadOnlyList<BaseChain> chains) => Of(ruleset, chains, null);

    /// <param name="scans">Each chain's references kept from earlier prepares (null: walk every rule, which gives the same source).</param>
    public static UnitSource Of(Ruleset ruleset, IReadOnlyList<BaseChain> chains, ChainFolds<ChainScan>? scans)
    {
        var reached = new List<Chain>();
        var sets = new List<Set>();
        var seenChains = new HashSet<string>(StringComparer.Ordinal);
        var seenSets = new HashSet<string>(StringComparer.Ordinal);
        var work = new Queue<(string Name, ValueList<Rule> Rules)>(chains.Select(c => (c.Name, c.Rules)));
        void Chain(string name)
        {
            if (!seenChains.Add(name) || ruleset.FindChain(name) is not { } c) return;
            reached.Add(c);
            work.Enqueue((c.Name, c.Rules));
        }
        void UseSet(string name)
        {
            if (!seenSets.Add(name) || ruleset.FindSet(name) is not { } s) return;
            sets.Add(s);
            foreach (var e in s.Elements)
                if (e.Verdict is JumpVerdict j) Chain(j.Chain);
                else if (e.Verdict is GotoVerdict g) Chain(g.Chain);
        }
        while (work.Count > 0)
        {
            var (name, rules) = work.Dequeue();
            if (scans != null)
            {
                // a reference a chain repeats changes nothing: the scan holds each once, in the order the walk meets them
                foreach (var reference in scans.Of(name, rules).References)
                    if (reference.IsSet) UseSet(reference.Name);
                    else Chain(reference.Name);
                continue;
            }
            foreach (var r in rules)
            {
                foreach (var m in r.Matchers)
                    if (m.Operator is InSet s) UseSet(s.Set);
                foreach (var o in r.Statements.OfType<ObjectMapStatement>()) UseSet(o.Map);
                switch (r.Verdict)
                {
                    case JumpVerdict j: Chain(j.Chain); break;
                    case GotoVerdict g: Chain(g.Chain); break;
                    case VerdictMapVerdict v: UseSet(v.Map); break;
                }
            }
        }
        return new UnitSource(chains.ToValueList(), reached.ToValueList(), sets.ToValueList());
    }
}
