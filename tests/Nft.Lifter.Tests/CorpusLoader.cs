using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Lifter;
using Nft.Netlink;

namespace Nft.Lifter.Tests;

/// <summary>
/// Reads a kernel dump written by Corpus/regenerate.py (one netlink message per hex line), decodes it
/// with Nft.Bytecode and groups it into the lifter's input, one <see cref="SourceTable"/> per table.
/// </summary>
public static class CorpusLoader
{
    static readonly Dictionary<string, IReadOnlyList<SourceTable>> Cache = new();

    public static IReadOnlyList<SourceTable> Load(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(name, out var c)) return c;
            var path = Path.Combine(AppContext.BaseDirectory, "Corpus", name + ".hex");
            var msgs = File.ReadAllLines(path).Where(l => l.Length > 0 && l[0] != '#').Select(Convert.FromHexString).ToList();
            return Cache[name] = Group(msgs.Select(DecodeOne).ToList());
        }
    }

    public static SourceTable Table(string corpus, string family, string name) =>
        Load(corpus).Single(t => FamilyNames.Of(t.Family) == family && t.Name == name);

    public static Rule RuleByComment(SourceTable t, string comment) =>
        t.Chains.SelectMany(c => c.Rules).Single(r => r.Comment == comment);

    public static string ChainOf(SourceTable t, Rule r) => t.Chains.Single(c => c.Rules.Contains(r)).Name;

    static object DecodeOne(byte[] bytes)
    {
        var reader = new NetlinkMessageReader(bytes);
        if (!reader.TryRead(out var msg)) throw new InvalidDataException("malformed message in corpus");
        return NftMessage.Decode(msg);
    }

    static List<SourceTable> Group(List<object> records)
    {
        var tables = records.OfType<Table>().ToList();
        var result = new List<SourceTable>();
        foreach (var t in tables)
        {
            bool Mine(byte fam, string? table) => fam == t.Family && table == t.Name;
            var rules = records.OfType<Rule>().Where(r => Mine(r.Family, r.Table)).ToList();
            var chains = records.OfType<Chain>().Where(c => Mine(c.Family, c.Table))
                .Select(c => new SourceChain(c, rules.Where(r => r.Chain == c.Name).ToList())).ToList();
            var elems = records.OfType<SetElementList>().Where(e => Mine(e.Family, e.Table)).ToList();
            var sets = records.OfType<Set>().Where(s => Mine(s.Family, s.Table))
                .Select(s => new SourceSet(s, elems.Where(e => e.Set == s.Name).SelectMany(e => e.Elements ?? []).ToList())).ToList();
            var objs = records.OfType<NftObject>().Where(o => Mine(o.Family, o.Table)).ToList();
            var fts = records.OfType<Flowtable>().Where(f => Mine(f.Family, f.Table)).ToList();
            result.Add(new SourceTable(t, chains, sets, objs, fts));
        }
        return result;
    }
}
