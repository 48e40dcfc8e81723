using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Set lookups name the set's two copies in the code and pick one with the run's generation (no lookup of the
/// outer map of maps), up to <see cref="ProgramCompiler.MaxDirectCopySets"/> sets per program; past that, and
/// for sets the program writes, they go through the outer map as before.
/// </summary>
public class DirectCopyLookupTests
{
    static readonly byte[] A = V4("198.18.0.1").Bytes.ToArray(), B = V4("198.18.0.9").Bytes.ToArray();
    static readonly byte[] Member = new byte[4];
    static readonly byte[] FromA = PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 2);

    static Backend.Ir.Set Addresses(string name) =>
        new(name, Fields.Ip.Saddr, SetData.NoData, ValueList.Of(SetElement.Exact(V4("198.18.0.1"))));

    [Fact]
    public void TheRunsGenerationChoosesTheCopyItReads()
    {
        using var p = Load(Xdp, Verdict.Accept, [Counted(1, Verdict.Drop, Matcher.InSet(Fields.Ip.Saddr, "s"))], sets: [Addresses("s")]);
        Assert.Contains("map[set:s@0]", p.Compiled.Disassembly);
        Assert.Contains("map[set:s@1]", p.Compiled.Disassembly);
        Assert.DoesNotContain("map[set:s]", p.Compiled.Disassembly);
        Assert.Equal(XdpDrop, p.Run(FromA));
        // generation 0: only copy 0 decides
        Assert.True(p.SetMapCopy("s", 1)!.Delete(A));
        Assert.Equal(XdpDrop, p.Run(FromA));
        Assert.True(p.SetMapCopy("s", 0)!.Delete(A));
        Assert.Equal(XdpPass, p.Run(FromA));
        // a batch of two keys switches to generation 1, which then reads copy 1 only
        p.UpdateMap("set:s", [(A, Member), (B, Member)], []);
        Assert.Equal(1, p.Generation);
        Assert.Equal(XdpDrop, p.Run(FromA));
        Assert.True(p.SetMapCopy("s", 0)!.Delete(A));
        Assert.Equal(XdpDrop, p.Run(FromA));
        Assert.True(p.SetMapCopy("s", 1)!.Delete(A));
        Assert.Equal(XdpPass, p.Run(FromA));
        Assert.Equal(4UL, p.Counter(1).Packets);
    }

    [Fact]
    public void ProgramsWithManySetsLookUpThroughTheOuterMap()
    {
        var n = ProgramCompiler.MaxDirectCopySets + 1;
        var sets = Enumerable.Range(0, n).Select(i => Addresses($"s{i}")).ToArray();
        var rules = Enumerable.Range(0, n).Select(i => Counted((ulong)(i + 1), Verdict.Continue, Matcher.InSet(Fields.Ip.Saddr, $"s{i}"))).ToArray();
        using var p = Load(NfIn4, Verdict.Accept, rules, sets: sets);
        Assert.Contains("map[set:s0]", p.Compiled.Disassembly);
        Assert.DoesNotContain("map[set:s0@0]", p.Compiled.Disassembly);
        Assert.Equal(NfAccept, p.Run(FromA));
        for (var i = 0; i < n; i++) Assert.Equal(1UL, p.Counter((ulong)(i + 1)).Packets);
    }
}
