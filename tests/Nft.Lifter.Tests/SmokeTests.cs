namespace Nft.Lifter.Tests;

public class SmokeTests
{
    [Theory]
    [InlineData("matches")]
    [InlineData("sets")]
    [InlineData("refused")]
    public void Dump(string corpus)
    {
        foreach (var t in CorpusLoader.Load(corpus))
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                {
                    try
                    {
                        var l = NftLifter.LiftRule(t, c.Name, r);
                        Console.WriteLine($"[\"{r.Comment}\"] = \"{l.Rule}\",");
                        foreach (var s in l.Sets) Console.WriteLine("   SET " + s);
                    }
                    catch (LiftException e) { Console.WriteLine($"REFUSED {r.Comment}: {e.Message} @{e.ExpressionIndex}"); }
                }
    }
}

public class SmokeTables
{
    [Theory]
    [InlineData("hooks")]
    [InlineData("nat")]
    [InlineData("route")]
    [InlineData("bridge")]
    [InlineData("arp")]
    public void DumpTables(string corpus)
    {
        try { Console.WriteLine(NftLifter.Lift(CorpusLoader.Load(corpus)).Ruleset); }
        catch (LiftException e) { Console.WriteLine($"REFUSED {corpus}: {e.Message} chain={e.Chain}"); }
        foreach (var t in CorpusLoader.Load(corpus))
            try { var r = NftLifter.LiftTable(t); Console.WriteLine(string.Join("\n", r.Counters.Select(kv => kv.Key + " -> " + kv.Value))); }
            catch (LiftException e) { Console.WriteLine($"REFUSED {corpus}: {e.Message} chain={e.Chain}"); }
    }
}
