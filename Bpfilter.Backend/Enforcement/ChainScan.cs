using System.Collections.Immutable;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// What the enforcer reads from one chain's rules on every prepare, folded over them in rule order: the sets and
/// chains they refer to (what <see cref="UnitSource.Of"/> follows), each once at its first occurrence (a later one
/// changes nothing there), and their quota and limit statements (object maps' objects included), every one in order
/// (<see cref="Enforcer"/>'s slots). Kept per chain (<see cref="ChainFolds{T}"/>): an append folds the new rules alone.
/// </summary>
public sealed class ChainScan : IRuleFold
{
    /// <summary>A set (<see cref="IsSet"/>) or chain a rule refers to.</summary>
    public readonly record struct Reference(bool IsSet, string Name);

    readonly List<Reference> _references = [];
    readonly HashSet<string> _sets = new(StringComparer.Ordinal), _chains = new(StringComparer.Ordinal);
    readonly List<Statement> _stateful = [];
    readonly List<string> _written = [];
    readonly HashSet<string> _writtenSeen = new(StringComparer.Ordinal);

    /// <summary>The sets rules write from the packet path (`update @s`), each once: their statement lists are compiled into the program.</summary>
    public IReadOnlyList<string> Written => _written;

    /// <summary>In the order <see cref="UnitSource.Of"/> meets them: per rule its matchers' sets, its object maps, its verdict's chain or map.</summary>
    public IReadOnlyList<Reference> References => _references;

    /// <summary>Every <see cref="QuotaStatement"/> and <see cref="LimitStatement"/>, in rule and statement order.</summary>
    public IReadOnlyList<Statement> Stateful => _stateful;

    public void Fold(ImmutableArray<Rule> rules, int from)
    {
        for (var x = from; x < rules.Length; x++)
        {
            var r = rules[x];
            foreach (var m in r.Matchers)
                if (m.Operator is InSet s) Set(s.Set);
            foreach (var st in r.Statements)
                if (st is ObjectMapStatement o) Set(o.Map);
            switch (r.Verdict)
            {
                case JumpVerdict j: Chain(j.Chain); break;
                case GotoVerdict g: Chain(g.Chain); break;
                case VerdictMapVerdict v: Set(v.Map); break;
            }
            foreach (var st in r.Statements)
                if (st is SetUpdateStatement u && _writtenSeen.Add(u.Set)) _written.Add(u.Set);
            foreach (var st in r.Statements)
                if (st is QuotaStatement or LimitStatement) _stateful.Add(st);
                else if (st is ObjectMapStatement o)
                    foreach (var ob in o.Objects)
                        if (ob is QuotaStatement or LimitStatement) _stateful.Add(ob);
        }
    }

    void Set(string name)
    {
        if (_sets.Add(name)) _references.Add(new Reference(true, name));
    }

    void Chain(string name)
    {
        if (_chains.Add(name)) _references.Add(new Reference(false, name));
    }
}
