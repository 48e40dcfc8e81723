using System.Buffers.Binary;
using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// ElementSet.Builder, which one NEWSETELEM or DELSETELEM message edits in place of a chain of immutable sets:
/// the same elements, order, counts and neighbour answers as element-by-element, and a refused message
/// still changes nothing.
/// </summary>
public class ElementSetBuilderTests
{
    static ElementRecord Rec(uint key, uint flags = 0, long seq = 0)
    {
        var k = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(k, key);
        if ((flags & (uint)NftSetElemFlags.Catchall) != 0) k = [];
        return new ElementRecord(new ElementKey(k, null, flags),
            new SetElement { Key = k.Length == 0 ? null : new ValueData(k), Flags = flags == 0 ? null : flags }, null, null) { InsertSeq = seq };
    }

    static void AssertSame(ElementSet expected, ElementSet actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        Assert.Equal(expected.Starts, actual.Starts);
        Assert.Equal(expected.Countable, actual.Countable);
        Assert.Equal(expected.Select(e => (e.Id, e.InsertSeq)), actual.Select(e => (e.Id, e.InsertSeq)));
    }

    [Fact]
    public void RandomEditsGiveWhatElementByElementEditsGive()
    {
        var rng = new Random(12);
        var start = ElementSet.Empty;
        for (uint i = 0; i < 200; i++) start = start.Add(Rec(i * 7, i % 5 == 0 ? (uint)NftSetElemFlags.IntervalEnd : 0));
        var immutable = start;
        var builder = start.ToBuilder();
        for (int step = 0; step < 5_000; step++)
        {
            uint key = (uint)rng.Next(0, 2_000);
            uint flags = rng.Next(10) switch { 0 => (uint)NftSetElemFlags.IntervalEnd, 1 => (uint)NftSetElemFlags.Catchall, _ => 0 };
            var e = Rec(key, flags, step);
            Span<byte> probe = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(probe, key);
            Assert.Equal(immutable.Around(probe), builder.Around(probe));
            bool has = immutable.TryGetValue(e.Id, out var found);
            Assert.Equal(has, builder.TryGetValue(e.Id, out var bfound));
            if (has) Assert.Same(found, bfound);
            switch (rng.Next(3))
            {
                case 0 when !has:
                    immutable = immutable.Add(e);
                    builder.Add(e);
                    break;
                case 1:
                    immutable = immutable.Remove(e.Id);
                    builder.Remove(e.Id);
                    break;
                case 2 when has:
                    immutable = immutable.SetItem(e);
                    builder.SetItem(e);
                    break;
            }
            Assert.Equal(immutable.Count, builder.Count);
            Assert.Equal(immutable.Starts, builder.Starts);
            Assert.Equal(immutable.Countable, builder.Countable);
        }
        AssertSame(immutable, builder.ToImmutable());
        // the set the builder came from is untouched
        Assert.Equal(200, start.Count);
    }

    [Fact]
    public void TryAddAddsANewIdentityAndLeavesOneThatIsThere()
    {
        var builder = ElementSet.Empty.Add(Rec(1, seq: 1)).ToBuilder();
        Assert.False(builder.TryAdd(Rec(1, seq: 2)));
        Assert.True(builder.TryAdd(Rec(2, seq: 3)));
        Assert.True(builder.TryAdd(Rec(3, (uint)NftSetElemFlags.IntervalEnd, seq: 4)));
        var set = builder.ToImmutable();
        Assert.Equal(new long[] { 1, 3, 4 }, set.Select(e => e.InsertSeq).ToArray());
        Assert.Equal(2, set.Starts);
        Assert.Equal(2, set.Countable);
    }

    static byte[] NewSet(uint seq, uint flags, uint? size = null) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "s");
        w.PutU32Be(3, flags);
        w.PutU32Be(4, 7); // ipv4_addr
        w.PutU32Be(5, 4);
        if (size is uint n)
        {
            var desc = w.BeginNested(9);
            w.PutU32Be(1, n);
            w.EndNested(desc);
        }
        w.PutU32Be(10, seq);
    });

    static byte[] Elements(uint seq, NlmFlags flags, params (uint Key, bool End)[] keys) => Elements(12, seq, flags, keys);

    /// <summary>NEWSETELEM (12) or DELSETELEM (14) of these keys (true: an interval end) into t s.</summary>
    static byte[] Elements(byte type, uint seq, NlmFlags flags, params (uint Key, bool End)[] keys) => Msg(type, flags, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "s");
        var list = w.BeginNested(3);
        foreach (var (key, end) in keys) Ipv4Element(w, key, end);
        w.EndNested(list);
    });

    /// <summary>The errno and offset a one-message batch after the setup gets, and the set's keys after it.</summary>
    static (int Errno, int Offset, List<byte[]> Keys) Refused(byte[] setup, byte[] msg)
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(1, "t"), setup, Elements(3, Create, (0x0a000001, false))), Port));
        var (errno, offset) = Error(Assert.Single(NlTestKit.Messages(ep.Process(Batch(msg), Port))).Bytes);
        return (errno, offset, ep.Ruleset.Tables[0].Sets[0].Elements.Select(e => e.Key).ToList());
    }

    static int ElementOffset(byte[] msg, int index)
    {
        // NFTA_SET_ELEM_LIST_ELEMENTS (3) is the last attribute; its nests start after its header
        int at = AttrOffset(msg, 3) + 4;
        for (int i = 0; i < index; i++) at += (BinaryPrimitives.ReadUInt16LittleEndian(msg.AsSpan(at)) + 3) & ~3;
        return at;
    }

    [Fact]
    public void AnElementTwiceInOneCreateMessageIsRefusedAtTheSecondAndNothingChanges()
    {
        var msg = Elements(4, Create | NlmFlags.Excl, (0x0a000002, false), (0x0a000003, false), (0x0a000002, false));
        var (errno, offset, keys) = Refused(NewSet(2, 0), msg);
        Assert.Equal(Errno.EEXIST, errno);
        Assert.Equal(ElementOffset(msg, 2), offset);
        Assert.Equal([[10, 0, 0, 1]], keys);
    }

    [Fact]
    public void AnElementTwiceInOneAddMessageIsAddedOnce()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(1, "t"), NewSet(2, 0),
            Elements(3, Create, (0x0a000002, false), (0x0a000003, false), (0x0a000002, false))), Port));
        var set = ep.Ruleset.Tables[0].Sets[0].Elements;
        Assert.Equal(2, set.Count);
        Assert.Equal(2, set.Countable);
    }

    [Fact]
    public void TheElementPastTheSizeInOneMessageIsRefusedWithEnfile()
    {
        var msg = Elements(4, Create, (0x0a000002, false), (0x0a000003, false), (0x0a000004, false));
        var (errno, offset, keys) = Refused(NewSet(2, 0, size: 3), msg);
        Assert.Equal(Errno.ENFILE, errno);
        Assert.Equal(ElementOffset(msg, 2), offset);
        Assert.Single(keys);
    }

    [Fact]
    public void AStartInsideARangeAddedEarlierInTheSameMessageOverlaps()
    {
        // [10.0.0.16, 10.0.0.32) then a start at 10.0.0.20: EEXIST, found from neighbours the message itself added
        var msg = Elements(4, Create, (0x0a000010, false), (0x0a000020, true), (0x0a000014, false));
        var (errno, offset, keys) = Refused(NewSet(2, 0x4), msg);
        Assert.Equal(Errno.EEXIST, errno);
        Assert.Equal(ElementOffset(msg, 2), offset);
        Assert.Single(keys);
    }

    [Fact]
    public void DeletingAnElementTwiceInOneMessageIsRefusedWithEnoent()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(1, "t"), NewSet(2, 0),
            Elements(3, Create, (0x0a000002, false), (0x0a000003, false))), Port));
        var del = Elements(14, 4, NlmFlags.Request, (0x0a000002, false), (0x0a000002, false));
        var (errno, offset) = Error(Assert.Single(NlTestKit.Messages(ep.Process(Batch(del), Port))).Bytes);
        Assert.Equal(Errno.ENOENT, errno);
        Assert.Equal(ElementOffset(del, 1), offset);
        Assert.Equal(2, ep.Ruleset.Tables[0].Sets[0].Elements.Count);
    }
}
