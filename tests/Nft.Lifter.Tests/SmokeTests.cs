namespace Nft.Lifter.Tests;

public class SmokeTests
{
    [Fact]
    public void ProbeExplains()
    {
        foreach (var t in CorpusLoader.Load("probe"))
        {
            try { Console.WriteLine(NftLifter.LiftTable(t).Explain()); }
            catch (LiftException e) { Console.WriteLine("REFUSED " + e.Message + " @" + e.ExpressionIndex); }
        }
    }
}
