using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The map entries of a set's elements: elements that hold nothing but their code share one value array per code
/// (a set of a million addresses allocates one), and an element with more (an expiry) gets its own without
/// changing the shared one; the program reads them as before.
/// </summary>
public class SetLayoutEntriesTests
{
    [Fact]
    public void CodeOnlyElementsShareAValuePerCodeAndOthersGetTheirOwn()
    {
        var expires = Backend.Libbpf.KernelClock.Jiffies64() + 100_000;
        var vmap = new Backend.Ir.Set("v", new MatchKey(Fields.Ip.Saddr), SetData.VerdictData, ValueList.Of(
            SetElement.Exact(V4("198.18.0.1"), Verdict.Accept),
            SetElement.Exact(V4("198.18.0.2"), Verdict.Drop),
            SetElement.Exact(V4("198.18.0.3"), Verdict.Accept),
            SetElement.Exact(V4("198.18.0.4"), Verdict.Drop) with { Expires = expires }), Timeouts: true);
        var rs = Ruleset(Xdp, Verdict.Accept, [new Rule(Verdict.VMap(Fields.Ip.Saddr, "v"))], sets: [vmap]);
        var compiled = ProgramCompiler.Compile(rs, rs.BaseChains.Items);
        var entries = Assert.Single(compiled.Maps, m => m.DoubleBuffered).Entries;
        Assert.Equal(4, entries.Count);
        Assert.Equal(entries.Select(e => e.Key), new[] { "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4" }.Select(a => V4(a).Bytes.ToArray()));
        uint Code(int i) => BinaryPrimitives.ReadUInt32LittleEndian(entries[i].Value);
        Assert.Equal(Code(0), Code(2));
        Assert.Equal(Code(1), Code(3));
        Assert.NotEqual(Code(0), Code(1));
        Assert.Same(entries[0].Value, entries[2].Value);
        Assert.NotSame(entries[1].Value, entries[3].Value);
        Assert.Equal(expires, BinaryPrimitives.ReadUInt64LittleEndian(entries[3].Value.AsSpan(SetLayoutExpires)));
        Assert.Equal(0ul, BinaryPrimitives.ReadUInt64LittleEndian(entries[1].Value.AsSpan(SetLayoutExpires)));
        using var p = Backend.Loader.LoadedProgram.Load(compiled);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.2")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.3")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.4")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9")));
    }

    /// <summary>Where the expiry sits in a set map value (SetLayout.ExpiresOffset).</summary>
    const int SetLayoutExpires = 8;

    static byte[] Tcp4(string src) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, 22);
}
