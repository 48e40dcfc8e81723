using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Lowering;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// A rule appended to a base chain's trailing grouped run (<see cref="RuleGrouping"/>) in a program that never sees the
/// run's network header: the ipv6 program of an inet chain and an `ip saddr ...` run (or the ipv4 program and an
/// `ip6 ...` run). Lowering does not depend on the program (both programs of an inet chain lower the same rules), so the
/// run is one `vmap` rule before and after, its map one element more; that rule has no matchers, and its key's header
/// dependency is another family's, so the compiler gives it no code, no map and no counter slot (a `vmap` rule holds
/// no counter: its elements' counters are laid out with its map, which this program does not have). A full compile
/// with the running program's counter layout then gives the running program again: kept as it is, nothing compiled
/// (at 10,000 rules that compile was most of an `nft add rule` into an inet chain, issue 12).
/// Taken only when that is certain without lowering: only that chain changed, by one rule appended, ending in accept
/// or drop, whose key is the trailing run's and whose key value no rule of the run has (else grouping leaves it out
/// and its counter idles in a slot); the run at least <see cref="RuleGrouping.DefaultMinRun"/> rules before it
/// (grouped before and after), without a jump, no rule before it ending the chain (all of it would be cut, its
/// counters idle in slots); the new element with statements only if the run's first has some (whether an element
/// has statements decides whether the program reads the packet's length); no set the attach point reads with
/// timeouts or written from the packet path (the full path's map diff could then differ from none).
/// </summary>
internal static class UnseenRunAppend
{
    /// <summary>Whether the program of <paramref name="hook"/> (<paramref name="ipv6"/>: the ipv6 program of an inet
    /// chain) compiled from <paramref name="was"/> is also what <paramref name="now"/> compiles to.</summary>
    /// <param name="runs">Each chain's trailing run kept from earlier prepares (null: folded here from the chain's rules, which gives the same run).</param>
    public static bool Keeps(Hook hook, bool ipv6, UnitSource was, UnitSource now, ChainFolds<TrailingRun>? runs = null)
    {
        if (ProgramCompiler.FixedEtherTypeOf(hook, ipv6) is not { } seen) return false;
        if (now.OneChainsRulesChangedFrom(was) is not var (before, after)) return false;
        foreach (var s in now.Sets)
            if (s.Timeouts || s.PacketWritten) return false;
        var (shorter, longer) = (before.Rules, after.Rules);
        if (longer.Count != shorter.Count + 1) return false;
        for (var i = 0; i < shorter.Count; i++)
            if (!UnitSource.Same(shorter[i], longer[i])) return false;
        var rule = longer[shorter.Count];
        if (rule.Verdict is not (AcceptVerdict or DropVerdict) || RuleGrouping.KeyOf(rule) is not { } key) return false;
        if (Dependencies.Of([key]) is not { EtherType: { } ether } || ether == seen) return false;
        var tail = runs?.Of(before.Name, shorter) ?? Fold(shorter);
        if (tail.Key != key || shorter.Count - tail.Start < RuleGrouping.DefaultMinRun || tail.EndedBefore || tail.Jumps
            || tail.Values.Contains(RuleGrouping.ValueOf(rule))) return false;
        return rule.Statements.IsEmpty || !shorter[tail.Start].Statements.IsEmpty;
    }

    static TrailingRun Fold(ValueList<Rule> rules)
    {
        var run = new TrailingRun();
        run.Fold(rules.Items, 0);
        return run;
    }
}
