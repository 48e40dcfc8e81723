using Nft.Bytecode.Expressions;
using SourceRule = Nft.Bytecode.Objects.Rule;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// What placement reads from one chain's rules, folded over them in rule and expression order: the chains
/// they jump to, the sets, objects and flowtables they refer to (what <see cref="Nft.Kernel.KernelSubset"/>
/// follows), the sets they update from the packet path, whether one sets <c>meta nftrace</c>, and the state
/// they keep (<see cref="PlacementPlan"/>'s stateful states, with the parts that depend on a set or the
/// table's objects left to be resolved against them). Each list holds an item once, at its first occurrence:
/// the order a walk of every rule would insert them in. Folding more rules onto the end extends the facts of
/// the rules before them, so a chain that only grew is folded over its new rules alone.
/// </summary>
public sealed class ChainFacts
{
    /// <summary>How a state entry is resolved: as it is, through a looked-up set's element statements, or through an object map.</summary>
    public enum StateKind : byte { Literal, LookupSet, ObjectMap }

    public readonly record struct State(StateKind Kind, string Text);

    readonly OrderedNames _jumps = new(), _sets = new(), _flowtables = new(), _writes = new();
    readonly List<(uint Type, string Name)> _objects = [];
    readonly HashSet<(uint, string)> _objectSeen = [];
    readonly List<State> _states = [];
    readonly HashSet<State> _stateSeen = [];

    public IReadOnlyList<string> Jumps => _jumps.Items;
    public IReadOnlyList<string> Sets => _sets.Items;
    public IReadOnlyList<(uint Type, string Name)> Objects => _objects;
    public IReadOnlyList<string> Flowtables => _flowtables.Items;
    /// <summary>Sets a dynset of these rules updates.</summary>
    public IReadOnlyList<string> Writes => _writes.Items;
    public bool SetsNfTrace { get; private set; }
    public IReadOnlyList<State> States => _states;

    /// <summary>Folds rules onto the facts, in order; <paramref name="chain"/> names them in state entries.</summary>
    public void Fold(string chain, IReadOnlyList<SourceRule> rules, int from)
    {
        for (int ri = from; ri < rules.Count; ri++)
        {
            var r = rules[ri];
            var exprs = r.Expressions;
            if (exprs == null) continue;
            for (int i = 0; i < exprs.Count; i++)
            {
                var e = exprs[i];
                // what KernelSubset.For follows, in its order of cases
                switch (e)
                {
                    case ImmediateExpr { Verdict: { IsJumpOrGoto: true, Chain: { } target } }: _jumps.Add(target); break;
                    case LookupExpr l: _sets.Add(l.Set); break;
                    case DynsetExpr d: _sets.Add(d.SetName); break;
                    case ObjRefExpr { SetName: { } s }: _sets.Add(s); break;
                    case ObjRefExpr { ImmName: { } o, ImmType: { } t }:
                        if (_objectSeen.Add((t, o))) _objects.Add((t, o));
                        break;
                    case FlowOffloadExpr f: _flowtables.Add(f.TableName); break;
                }
                if (e is DynsetExpr w) _writes.Add(w.SetName);
                if (e is MetaExpr { IsSet: true, Key: MetaExpr.KeyNfTrace }) SetsNfTrace = true;
                // PlacementPlan's stateful states, in its order of cases
                State? state = e switch
                {
                    QuotaExpr => new State(StateKind.Literal, $"the quota of chain {chain} handle {r.Handle} (expression {i})"),
                    LimitExpr => new State(StateKind.Literal, $"the limit of chain {chain} handle {r.Handle} (expression {i})"),
                    ObjRefExpr { IsMap: false, ImmType: var type, ImmName: { } n } =>
                        new State(StateKind.Literal, $"{Nft.Bytecode.Objects.NftObject.KindOf(type ?? 0)} {n}"),
                    LookupExpr { Set: var n } => new State(StateKind.LookupSet, n),
                    ObjRefExpr { IsMap: true, SetName: { } m } => new State(StateKind.ObjectMap, m),
                    _ => null,
                };
                if (state is { } s2 && _stateSeen.Add(s2)) _states.Add(s2);
            }
        }
    }

    /// <summary>Names in the order first added, each once.</summary>
    sealed class OrderedNames
    {
        readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        public List<string> Items { get; } = [];

        public void Add(string name)
        {
            if (_seen.Add(name)) Items.Add(name);
        }
    }
}
