using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;

namespace Nft.Kernel.Tests;

public class KernelSubsetTests
{
    [Fact]
    public void BringsAlongWhatTheChainsReachAndNothingElse()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        emulation.NftFile(Rulesets.Realistic);
        var filter = Rulesets.Read(emulation).Single(t => t.Table.Name == "filter");

        var subset = KernelSubset.For(filter, ["input"]);
        Assert.Equal(["input", "mdns", "tail"], subset.Chains.Select(c => c.Chain.Name!).Order());
        Assert.Contains(subset.Sets, s => s.Set.Name == "blocked");
        Assert.Contains(subset.Sets, s => s.Set.Name == "portverdict");
        Assert.Equal(filter.Sets.Count(s => s.Set.SetFlags.HasFlag(Nft.Bytecode.NftSetFlags.Anonymous)),
            subset.Sets.Count(s => s.Set.SetFlags.HasFlag(Nft.Bytecode.NftSetFlags.Anonymous)));
        Assert.Equal(["icmp_seen"], subset.Objects!.Select(o => o.Name!)); // the quota no rule applies stays out

        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        placement.Prepare([subset]);
        placement.Commit();
        var listing = kernel.ListRuleset();
        Assert.DoesNotContain("quota big", listing);
        Assert.Contains("udp dport vmap { 67 : drop, 5353 : jump mdns }", listing);

        var alone = KernelSubset.For(filter, ["mdns"]);
        Assert.Equal(["mdns"], alone.Chains.Select(c => c.Chain.Name!));
        Assert.Empty(alone.Sets);
    }

    [Fact]
    public void AReferenceTheTableDoesNotHoldNamesTheRule()
    {
        var table = new SourceTable(new Table { Family = 2, Name = "x" },
            [new SourceChain(new Chain { Family = 2, Table = "x", Name = "c" },
                [new Rule { Family = 2, Table = "x", Chain = "c", Handle = 7,
                    Expressions = [new ImmediateExpr(0, new VerdictData(Verdict.GotoChain("gone")))] }])],
            []);
        var e = Assert.Throws<ArgumentException>(() => KernelSubset.For(table, ["c"]));
        Assert.Contains("chain c rule handle 7", e.Message);
        Assert.Contains("gone", e.Message);
    }
}
