using System.Collections.Immutable;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// Whether a chain's rules read a ct key (a matcher's, or a verdict map's key), folded over them in order: kept per
/// chain (<see cref="ChainFolds{T}"/>), an append folds the new rules alone (<see cref="ConntrackReference.Needed"/>).
/// </summary>
internal sealed class CtReads : IRuleFold
{
    public bool Reads { get; private set; }

    public static bool Ct(MatchKey k)
    {
        foreach (var f in k.Fields)
            if (f is CtField) return true;
        return false;
    }

    public static bool ReadBy(Rule r)
    {
        foreach (var m in r.Matchers)
            if (Ct(m.Key)) return true;
        return r.Verdict is VerdictMapVerdict { Key: var k } && Ct(k);
    }

    public void Fold(ImmutableArray<Rule> rules, int from)
    {
        for (var x = from; x < rules.Length && !Reads; x++) Reads = ReadBy(rules[x]);
    }
}
