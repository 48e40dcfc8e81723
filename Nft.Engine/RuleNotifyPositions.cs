using Nft.Engine.Model;

namespace Nft.Engine;

/// <summary>
/// The position nf_tables_rule_notify reports for a rule of the committed ruleset: the handle of the rule before it
/// when it has neighbours on both sides. Each committed chain's rules are indexed by handle once, at the first
/// notification that asks: looking each rule up in its chain walked the chain per rule, and a batch of 100,000
/// appended rules with a listener took the square of that.
/// </summary>
internal sealed class RuleNotifyPositions
{
    /// <summary>Per committed chain record (by reference: records compare by value), its rules' handles and indexes.</summary>
    readonly Dictionary<ChainRecord, (ulong[] Handles, Dictionary<ulong, int> Index)> _chains = new(ReferenceEqualityComparer.Instance);

    /// <summary>Whether <paramref name="handle"/> is in <paramref name="chain"/>, and the position it is notified with.</summary>
    public bool TryGet(ChainRecord chain, ulong handle, out ulong? position)
    {
        if (!_chains.TryGetValue(chain, out var indexed)) _chains[chain] = indexed = Indexed(chain);
        position = null;
        if (!indexed.Index.TryGetValue(handle, out int i)) return false;
        if (i > 0 && i < indexed.Handles.Length - 1) position = indexed.Handles[i - 1];
        return true;
    }

    static (ulong[], Dictionary<ulong, int>) Indexed(ChainRecord chain)
    {
        var handles = new ulong[chain.Rules.Count];
        var index = new Dictionary<ulong, int>(handles.Length);
        int i = 0;
        foreach (var r in chain.Rules)
        {
            handles[i] = r.Handle;
            index[r.Handle] = i++;
        }
        return (handles, index);
    }
}
