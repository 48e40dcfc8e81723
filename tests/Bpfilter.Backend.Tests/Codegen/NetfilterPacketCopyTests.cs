using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Netfilter programs copy the start of the network and transport headers to the stack once
/// (<c>NetfilterFlavor</c>): a field inside a copy must be readable exactly when bpf_dynptr_read of it
/// would succeed (its last byte within the skb), and fields past the copies still read the skb.
/// </summary>
public class NetfilterPacketCopyTests
{
    /// <summary>Transport fields (byte offset, bytes) inside the 24-byte copy, on its edge and past it.</summary>
    private static readonly (int Offset, int Bytes)[] TransportFields = [(0, 2), (2, 2), (13, 1), (18, 2), (20, 4), (22, 2), (24, 4), (28, 2)];

    [Theory]
    [InlineData(5)]
    [InlineData(6)] // 4 bytes of options: the transport header, and its copy, start later
    public void TransportFieldsAreReadExactlyWhenTheSkbHasThem(int ihl)
    {
        var rules = TransportFields.Select((f, i) => Counted((ulong)(10 + i), Verdict.Continue,
            Matcher.Ne(PayloadField.Raw(PayloadBase.Transport, 8 * f.Offset, 8 * f.Bytes), Value.FromUInt(0, 8 * f.Bytes)))).ToList();
        rules.Add(Counted(2, Verdict.Continue, Matcher.Eq(Fields.Ip.Daddr, V4("198.18.0.2"))));
        rules.Add(Counted(3, Verdict.Continue, Matcher.Ne(PayloadField.Raw(PayloadBase.Network, 8 * (4 * ihl - 2), 16), U16(0))));
        using var p = Load(NfIn4, Verdict.Accept, rules.ToArray());
        for (var k = 0; k <= 32; k++)
        {
            var before = TransportFields.Select((_, i) => p.Counter((ulong)(10 + i)).Packets).ToArray();
            var daddr = p.Counter(2).Packets;
            Assert.Equal(NfAccept, p.Run(Frame(ihl, k)));
            for (var i = 0; i < TransportFields.Length; i++)
            {
                var (offset, bytes) = TransportFields[i];
                Assert.True(before[i] + (offset + bytes <= k ? 1UL : 0UL) == p.Counter((ulong)(10 + i)).Packets,
                    $"ihl {ihl}, {k} transport bytes: field at {offset}, {bytes} bytes");
            }
            Assert.Equal(daddr + 1, p.Counter(2).Packets);
        }
        Assert.Equal(33UL, p.Counter(3).Packets); // the last option bytes (or the last address bytes) are always there
    }

    /// <summary>
    /// Where the kernel lets a netfilter program load through skb->data, the entry copies a linear network header
    /// with plain loads (no bpf_dynptr_read; the helper stays for a paged skb), and the fields read the same: the
    /// test above covers packets shorter than the copy, this one a full-sized one.
    /// </summary>
    [Fact]
    public void TheEntryCopiesALinearHeaderWithoutAHelperCall()
    {
        Assert.True(Backend.Libbpf.SkbDataRead.Available, "this kernel (6.18) reads skb->data as read-only untrusted memory");
        using var p = Load(NfIn4, Verdict.Accept,
        [
            Counted(1, Verdict.Continue, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1"))),
            Counted(3, Verdict.Continue, Matcher.Eq(PayloadField.Raw(PayloadBase.Transport, 8 * 28, 16), U16(0xabab))), // past the copies
            Counted(2, Verdict.Drop, Matcher.Eq(PayloadField.Raw(PayloadBase.Transport, 8 * 20, 32), U32(0xabababab))),
        ]);
        var entry = System.Text.RegularExpressions.Regex.Split(p.Compiled.Disassembly, @"^\.l3_paged\d*:", System.Text.RegularExpressions.RegexOptions.Multiline)[0];
        Assert.Contains("r0 = *(u64 *)(r4 + 56)", entry);
        Assert.DoesNotContain("dynptr_read", entry);
        Assert.DoesNotContain("call kfunc#", entry); // no regular chains: the dynptr is made only where a read needs it
        Assert.Contains("dynptr_read", p.Compiled.Disassembly);
        Assert.Equal(NfDrop, p.Run(Frame(5, 60)));
        Assert.Equal(NfAccept, p.Run(Frame(5, 23)));
        Assert.Equal(2UL, p.Counter(1).Packets);
        Assert.Equal(1UL, p.Counter(2).Packets);
        Assert.Equal(1UL, p.Counter(3).Packets);
    }

    /// <summary>A subprogram reads the base program's dynptr, so with regular chains the entry makes it first.</summary>
    [Fact]
    public void WithRegularChainsTheEntryMakesTheDynptr()
    {
        var sub = new Chain("sub", ValueList.Of(Counted(2, Verdict.Drop, Matcher.Eq(PayloadField.Raw(PayloadBase.Transport, 8 * 28, 16), U16(0xabab)))));
        using var p = Load(NfIn4, Verdict.Accept, [new Rule(Verdict.Jump("sub"), Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1")))], chains: [sub]);
        Assert.StartsWith("call kfunc#", p.Compiled.Disassembly.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("call", StringComparison.Ordinal)));
        Assert.Equal(NfDrop, p.Run(Frame(5, 40)));
        Assert.Equal(NfAccept, p.Run(Frame(5, 29)));
        Assert.Equal(1UL, p.Counter(2).Packets);
    }

    /// <summary>IPv4 (ihl words of header, options 0x01 no-op) with <paramref name="transport"/> bytes 0xab of TCP, behind an Ethernet header.</summary>
    private static byte[] Frame(int ihl, int transport)
    {
        var ip = new byte[4 * ihl + transport];
        ip[0] = (byte)(0x40 | ihl);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
        ip[8] = 64;
        ip[9] = 6;
        byte[] src = [198, 18, 0, 1], dst = [198, 18, 0, 2];
        src.CopyTo(ip, 12);
        dst.CopyTo(ip, 16);
        for (var i = 20; i < 4 * ihl; i++) ip[i] = 1;
        for (var i = 4 * ihl; i < ip.Length; i++) ip[i] = 0xab;
        return [.. new byte[12], 0x08, 0x00, .. ip];
    }
}
