using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Maps of values written from the packet path (`add|update @m { KEY : DATA }`, nft_dynset with a data register):
/// a new element takes the register's bytes as its data, in both copies; an existing live element keeps its data
/// (nft_rhash_update returns it and nft_dynset_eval never writes the data again; measured on 6.18: `update @d
/// { ip saddr timeout 1h : ip daddr }` renewed 127.0.0.1's expiry and kept the first packet's 127.0.0.2); an
/// expired one is replaced with the new data; `delete` removes the key whatever the data.
/// </summary>
public class PacketPathMapTests
{
    private static byte[] Tcp4(string src, string dst = "198.18.0.2") => PacketBuilder.Ether().Ipv4(src, dst).Tcp(40000, 22);

    private static Backend.Ir.Set Map(MatchKey key, int dataBytes, bool timeouts, params SetElement[] elements) =>
        new("m", key, new SetData.Bytes(8 * dataBytes), elements.ToValueList(), Timeouts: timeouts) { PacketWritten = true, Size = 65535 };

    private static Backend.Ir.Set Map4(bool timeouts = true, params SetElement[] elements) => Map(Fields.Ip.Saddr, 4, timeouts, elements);

    private static Rule Write(SetUpdateOp op, StatementValue data, TimeSpan? timeout = null, MatchKey? key = null) =>
        new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new SetUpdateStatement(op, "m", key ?? Fields.Ip.Saddr, timeout, data)), Verdict.Continue);

    private static readonly StatementValue Daddr = new StatementValue.FromKey(Fields.Ip.Daddr);

    private static SetElement Element(string key, string data, ulong? expires = null) =>
        SetElement.Exact(V4(key)) with { Data = V4(data), Expires = expires };

    /// <summary>The data (as long as the key here) of a key in both copies, as the map value holds it; null where a copy lacks the key.</summary>
    private static (Value? Copy0, Value? Copy1) DataOf(LoadedProgram p, byte[] key)
    {
        // the data ends the value
        Value? Read(int copy)
        {
            var value = new byte[p.SetMapCopy("m", copy)!.ValueSize];
            return p.SetMapCopy("m", copy)!.TryLookup(key, value) ? new Value(value.AsSpan(value.Length - key.Length)) : null;
        }
        return (Read(0), Read(1));
    }

    private static (Value?, Value?) DataOf(LoadedProgram p, string addr) => DataOf(p, V4(addr).Bytes.ToArray());

    private static ulong Hz => (ulong)KernelClock.Hz!.Value;

    [Fact]
    public void AddGivesANewElementThePacketFieldAsDataInBothCopies()
    {
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Add, Daddr, TimeSpan.FromSeconds(30))], sets: [Map4()]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5", "198.18.0.9")));
        Assert.Equal((V4("198.18.0.9"), V4("198.18.0.9")), DataOf(p, "198.18.0.5"));
        var live = Assert.Single(p.LiveElements("m")!);
        Assert.Equal(V4("198.18.0.9"), new Value(live.Data!));
        Assert.Equal(30 * Hz, live.Timeout);
    }

    [Fact]
    public void AddAndUpdateKeepALiveElementsDataAndUpdateRenewsItsExpiry()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Update, Daddr, TimeSpan.FromSeconds(30))],
            sets: [Map4(elements: [Element("198.18.0.5", "10.0.0.1", now + 5 * Hz), Element("198.18.0.7", "10.0.0.2")])]);
        p.Run(Tcp4("198.18.0.5", "198.18.0.9"));
        p.Run(Tcp4("198.18.0.7", "198.18.0.9"));
        p.Run(Tcp4("198.18.0.8", "198.18.0.9"));
        p.Run(Tcp4("198.18.0.8", "198.18.0.10")); // the element this packet would add is there: its data stays
        Assert.Equal((V4("10.0.0.1"), V4("10.0.0.1")), DataOf(p, "198.18.0.5"));
        Assert.Equal((V4("10.0.0.2"), V4("10.0.0.2")), DataOf(p, "198.18.0.7"));
        Assert.Equal((V4("198.18.0.9"), V4("198.18.0.9")), DataOf(p, "198.18.0.8"));
        var live = p.LiveElements("m")!.ToDictionary(e => new Value(e.Key).ToString());
        Assert.True(live[V4("198.18.0.5").ToString()].Expires >= now + 30 * Hz);
        Assert.Null(live[V4("198.18.0.7").ToString()].Expires); // permanent: update leaves it alone
    }

    [Fact]
    public void AddReplacesAnExpiredElementWithTheNewData()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Add, Daddr, TimeSpan.FromSeconds(30))],
            sets: [Map4(elements: [Element("198.18.0.6", "10.0.0.1", now - 1)])]);
        p.Run(Tcp4("198.18.0.6", "198.18.0.9"));
        Assert.Equal((V4("198.18.0.9"), V4("198.18.0.9")), DataOf(p, "198.18.0.6"));
    }

    [Fact]
    public void AConstantIsWrittenAsTheRegisterBytesAndTheKeyMatchesAsAMember()
    {
        // `add @m { ip saddr : 0x1 }` on a mark map: the register holds the host-order u32 nft sent
        var mark = Value.FromBytes(1, 0, 0, 0);
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "m")),
            Write(SetUpdateOp.Add, new StatementValue.Immediate(mark))], sets: [Map4(timeouts: false)]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal((mark, mark), DataOf(p, "198.18.0.5"));
        Assert.Equal(mark, new Value(Assert.Single(p.LiveElements("m")!).Data!));
    }

    [Fact]
    public void DeleteRemovesTheKeyWhateverItsData()
    {
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Delete, Daddr)],
            sets: [Map4(timeouts: false, elements: [Element("198.18.0.5", "10.0.0.1"), Element("198.18.0.6", "10.0.0.2")])]);
        p.Run(Tcp4("198.18.0.5", "198.18.0.9"));
        Assert.Equal((null, null), DataOf(p, "198.18.0.5"));
        Assert.Equal((V4("10.0.0.2"), V4("10.0.0.2")), DataOf(p, "198.18.0.6"));
    }

    [Fact]
    public void ASixteenByteFieldIsCopiedWholeIntoAValueWithoutTimeouts()
    {
        // the field is read into the scratch buffer's start where the value is built: the data sits beyond it
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Add, new StatementValue.FromKey(Fields.Ip6.Daddr), key: Fields.Ip6.Saddr)],
            sets: [Map(Fields.Ip6.Saddr, 16, timeouts: false)]);
        Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv6("2001:db8::5", "2001:db8::1:2").Tcp(40000, 22)));
        Assert.Equal(32, p.SetMapCopy("m", 0)!.ValueSize); // code, then the data at 16
        Assert.Equal((V6("2001:db8::1:2"), V6("2001:db8::1:2")), DataOf(p, V6("2001:db8::5").Bytes.ToArray()));
    }

    [Fact]
    public void TheControlPlaneWritesACommittedElementsData()
    {
        using var p = Load(Xdp, Verdict.Accept, [Write(SetUpdateOp.Add, Daddr)], sets: [Map4(timeouts: false)]);
        p.AddElement("m", Element("198.18.0.5", "10.0.0.3"));
        p.Run(Tcp4("198.18.0.5", "198.18.0.9"));
        Assert.Equal((V4("10.0.0.3"), V4("10.0.0.3")), DataOf(p, "198.18.0.5"));
    }
}
