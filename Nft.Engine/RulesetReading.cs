using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>One counter expression of a rule and its totals; <see cref="Ordinal"/> counts the rule's counter statements from 0, in listing order.</summary>
public readonly record struct RuleCounter(byte Family, string Table, string Chain, ulong Handle, int Ordinal, CounterValue Value);

/// <summary>A named counter object and its totals.</summary>
public readonly record struct ObjectCounter(byte Family, string Table, string Name, CounterValue Value);

/// <summary>
/// The committed ruleset as one request sees it (<see cref="NfTablesEndpoint.Observe{T}"/>): its generation, and its
/// counters with the totals `nft list ruleset` prints (the emulated cell plus what the backend counted).
/// Valid only inside the callback it is handed to.
/// </summary>
public sealed class RulesetReading
{
    readonly IRulesetBackend _backend;

    internal RulesetReading(RulesetSnapshot ruleset, uint generation, IRulesetBackend backend)
    {
        Ruleset = ruleset;
        Generation = generation;
        _backend = backend;
    }

    public RulesetSnapshot Ruleset { get; }
    public uint Generation { get; }

    /// <summary>Every counter expression of every rule, in listing order (tables, chains, rules).</summary>
    public IEnumerable<RuleCounter> RuleCounters()
    {
        foreach (var t in Ruleset.Tables)
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                {
                    int ordinal = 0;
                    for (int i = 0; i < r.Expressions.Count; i++)
                    {
                        if (r.Expressions[i] is not CounterExpr || r.Counters[i] is not { } cell) continue;
                        var live = _backend.ReadCounter(new CounterRef(t.Family, t.Name, c.Name, r.Handle, i, null));
                        yield return new RuleCounter(t.Family, t.Name, c.Name, r.Handle, ordinal++, cell.Plus(live));
                    }
                }
    }

    /// <summary>Every named counter object (`counter NAME { }`), in listing order.</summary>
    public IEnumerable<ObjectCounter> ObjectCounters()
    {
        foreach (var t in Ruleset.Tables)
            foreach (var o in t.Objects)
                if (o.Type == (uint)NftObjectType.Counter && o.Counter is { } cell)
                    yield return new ObjectCounter(t.Family, t.Name, o.Name,
                        cell.Plus(_backend.ReadCounter(CounterRef.Named(t.Family, t.Name, o.Name, o.Type))));
    }
}
