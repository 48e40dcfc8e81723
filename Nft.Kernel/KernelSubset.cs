using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>
/// The part of a table the kernel must hold to run some of its chains: those chains, every regular
/// chain they can reach (jump/goto in rules and in the verdict maps they look up), every set they use
/// (named and anonymous, with the chains and objects in its elements), every named object they apply
/// (directly or through an object map) and every flowtable they offload to. Rule handles, order and
/// layouts are kept. A reference to something the table does not hold is an error naming the rule.
/// </summary>
public static class KernelSubset
{
    public static SourceTable For(SourceTable table, IEnumerable<string> chainNames)
    {
        var key = TransitionPlanner.KeyOf(table);
        var chains = table.Chains.ToDictionary(c => c.Chain.Name ?? throw new ArgumentException($"table {key}: a chain has no name"));
        var sets = table.Sets.ToDictionary(s => s.Set.Name ?? throw new ArgumentException($"table {key}: a set has no name"));
        var objects = (table.Objects ?? []).ToDictionary(o => (o.Type ?? 0, o.Name!));
        var flowtables = (table.Flowtables ?? []).ToDictionary(f => f.Name!);

        var needChains = new HashSet<string>();
        var needSets = new HashSet<string>();
        var needObjects = new HashSet<(uint, string)>();
        var needFlowtables = new HashSet<string>();
        var work = new Queue<string>();
        void Chain(string name, string from)
        {
            if (!chains.ContainsKey(name)) throw new ArgumentException($"{from}: jumps to chain {name}, which table {key} does not hold");
            if (needChains.Add(name)) work.Enqueue(name);
        }
        void Object(uint type, string name, string from)
        {
            if (!objects.ContainsKey((type, name))) throw new ArgumentException($"{from}: applies {NftObject.KindOf(type)} {name}, which table {key} does not hold");
            needObjects.Add((type, name));
        }
        void Set(string name, string from)
        {
            if (!sets.TryGetValue(name, out var s)) throw new ArgumentException($"{from}: uses set {name}, which table {key} does not hold");
            if (!needSets.Add(name)) return;
            foreach (var e in s.Elements)
            {
                if (e.Data is VerdictData { Verdict: { IsJumpOrGoto: true, Chain: { } target } }) Chain(target, $"set {key} {name}");
                if (e.ObjRef is { } obj) Object(s.Set.ObjType ?? 0, obj, $"set {key} {name}");
            }
        }

        foreach (var name in chainNames) Chain(name, $"table {key}");
        while (work.TryDequeue(out var name))
        {
            foreach (var r in chains[name].Rules)
            {
                // named only for a reference (placement walks every rule of every commit: most refer to nothing)
                string From() => $"table {key} chain {name} rule handle {r.Handle}";
                foreach (var e in r.Expressions ?? [])
                {
                    switch (e)
                    {
                        case ImmediateExpr { Verdict: { IsJumpOrGoto: true, Chain: { } target } }: Chain(target, From()); break;
                        case LookupExpr l: Set(l.Set, From()); break;
                        case DynsetExpr d: Set(d.SetName, From()); break;
                        case ObjRefExpr { SetName: { } s }: Set(s, From()); break;
                        case ObjRefExpr { ImmName: { } o, ImmType: { } t }: Object(t, o, From()); break;
                        case FlowOffloadExpr f:
                            if (!flowtables.ContainsKey(f.TableName)) throw new ArgumentException($"{From()}: offloads to flowtable {f.TableName}, which table {key} does not hold");
                            needFlowtables.Add(f.TableName);
                            break;
                    }
                }
            }
        }
        return table with
        {
            Chains = table.Chains.Where(c => needChains.Contains(c.Chain.Name!)).ToList(),
            Sets = table.Sets.Where(s => needSets.Contains(s.Set.Name!)).ToList(),
            Objects = table.Objects?.Where(o => needObjects.Contains((o.Type ?? 0, o.Name!))).ToList(),
            Flowtables = table.Flowtables?.Where(f => needFlowtables.Contains(f.Name!)).ToList(),
        };
    }
}
