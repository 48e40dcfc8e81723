using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// Everything an attach point's program is compiled from: its base chains, the regular chains they
/// reach (jump, goto, verdict map elements) and the sets their rules read (object maps too). Two equal sources compile
/// to the same program, so an attach point whose source did not change keeps its program. Written: the sets rules write
/// from the packet path (`update @s`) and do not read, without their elements (the transaction's own element changes
/// reach them as map updates), for what the program compiles from them (the statement lists its elements carry, size, timeouts).
/// </summary>
public sealed record UnitSource(ValueList<BaseChain> Chains, ValueList<Chain> Reached, ValueList<Set> Sets, ValueList<Set> Written = default)
{
    public static UnitSource Of(Ruleset ruleset, IReadOnlyList<BaseChain> chains) => Of(ruleset, chains, null);

    /// <param name="scans">Each chain's references kept from earlier prepares (null: walk every rule, which gives the same source).</param>
    public static UnitSource Of(Ruleset ruleset, IReadOnlyList<BaseChain> chains, ChainFolds<ChainScan>? scans)
    {
        var reached = new List<Chain>();
        var sets = new List<Set>();
        var seenChains = new HashSet<string>(StringComparer.Ordinal);
        var seenSets = new HashSet<string>(StringComparer.Ordinal);
        var written = new List<string>();
        var seenWritten = new HashSet<string>(StringComparer.Ordinal);
        void Write(string name)
        {
            if (seenWritten.Add(name)) written.Add(name);
        }
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
                var scan = scans.Of(name, rules);
                foreach (var reference in scan.References)
                    if (reference.IsSet) UseSet(reference.Name);
                    else Chain(reference.Name);
                foreach (var w in scan.Written) Write(w);
                continue;
            }
            foreach (var r in rules)
            {
                foreach (var m in r.Matchers)
                    if (m.Operator is InSet s) UseSet(s.Set);
                foreach (var o in r.Statements.OfType<ObjectMapStatement>()) UseSet(o.Map);
                foreach (var u in r.Statements.OfType<SetUpdateStatement>()) Write(u.Set);
                switch (r.Verdict)
                {
                    case JumpVerdict j: Chain(j.Chain); break;
                    case GotoVerdict g: Chain(g.Chain); break;
                    case VerdictMapVerdict v: UseSet(v.Map); break;
                }
            }
        }
        var writtenSets = written.Where(n => !seenSets.Contains(n)).Select(ruleset.FindSet).OfType<Set>()
            .Select(s => s with { Elements = ValueList<SetElement>.Empty }).ToValueList();
        return new UnitSource(chains.ToValueList(), reached.ToValueList(), sets.ToValueList(), writtenSets);
    }

    /// <summary>
    /// The one base chain whose rules alone changed from <paramref name="was"/> to this source, before and after: every
    /// other chain, the chains reached and the sets read and written equal (what the in-place edits start from), else null.
    /// </summary>
    public (BaseChain Before, BaseChain After)? OneChainsRulesChangedFrom(UnitSource was)
    {
        if (was.Chains.Count != Chains.Count || was.Reached != Reached || was.Sets != Sets || was.Written != Written) return null;
        var changed = -1;
        for (var k = 0; k < Chains.Count; k++)
        {
            if (Same(was.Chains[k], Chains[k])) continue;
            if (changed >= 0) return null;
            changed = k;
        }
        if (changed < 0) return null;
        var (before, after) = (was.Chains[changed], Chains[changed]);
        return before with { Rules = after.Rules } == after ? (before, after) : null;
    }

    /// <summary>Equal, by reference first (unchanged lifted objects are the same ones from one commit to the next).</summary>
    internal static bool Same<T>(T a, T b) where T : class => ReferenceEquals(a, b) || a.Equals(b);
}
