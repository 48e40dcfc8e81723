using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Nft.Kernel;

/// <summary>Reads the kernel's nf_tables content through dumps into typed objects, grouped per table.</summary>
public static class KernelRuleset
{
    /// <summary>
    /// Every table of <paramref name="family"/> (0: all families) with its chains and rules in the
    /// kernel's order, sets (anonymous ones included) with their elements, objects and flowtables.
    /// Records keep the kernel's layout (handles, use counts, counters included).
    /// </summary>
    public static IReadOnlyList<SourceTable> Read(KernelNfTablesSocket socket, byte family = 0, Func<Table, bool>? include = null)
    {
        var tables = socket.Dump<Table>(NftMsgType.GetTable, family, new Table()).Where(t => include?.Invoke(t) ?? true).ToList();
        var result = new List<SourceTable>();
        foreach (var t in tables) result.Add(ReadTable(socket, t));
        return result;
    }

    /// <summary>One table's content (the table record as dumped).</summary>
    public static SourceTable ReadTable(KernelNfTablesSocket socket, Table t)
    {
        string name = t.Name ?? throw new ArgumentException("table without a name");
        var chains = socket.Dump<Chain>(NftMsgType.GetChain, t.Family, new Chain { Table = name }).Where(c => c.Table == name);
        var rules = ReadRules(socket, t.Family, name);
        var sets = socket.Dump<Set>(NftMsgType.GetSet, t.Family, new Set { Table = name }).Where(s => s.Table == name)
            .Select(s => new SourceSet(s, ReadElements(socket, s))).ToList();
        var objects = socket.Dump<NftObject>(NftMsgType.GetObj, t.Family, new NftObject { Table = name }).Where(o => o.Table == name).ToList();
        var flowtables = socket.Dump<Flowtable>(NftMsgType.GetFlowtable, t.Family, new Flowtable { Table = name }).Where(f => f.Table == name).ToList();
        return new SourceTable(t,
            chains.Select(c => new SourceChain(c, rules.Where(r => r.Chain == c.Name).ToList())).ToList(),
            sets, objects, flowtables);
    }

    /// <summary>A table's rules in the kernel's order (chain by chain).</summary>
    public static IReadOnlyList<Rule> ReadRules(KernelNfTablesSocket socket, byte family, string table) =>
        socket.Dump<Rule>(NftMsgType.GetRule, family, new Rule { Table = table }).Where(r => r.Table == table && r.Family == family).ToList();

    public static IReadOnlyList<SetElement> ReadElements(KernelNfTablesSocket socket, Set s) =>
        socket.Dump<SetElementList>(NftMsgType.GetSetElem, s.Family, new SetElementList { Table = s.Table, Set = s.Name })
            .SelectMany(l => l.Elements ?? []).ToList();
}
