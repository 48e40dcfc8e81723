using Nft.Netlink;

namespace Nft.Netlink.Tests;

public class AttributeReaderTests
{
    // NFTA_TABLE_NAME "t" (len 6, padded to 8), NFTA_TABLE_FLAGS be32 1.
    static readonly byte[] TableAttrs = [6, 0, 1, 0, (byte)'t', 0, 0, 0, 8, 0, 2, 0, 0, 0, 0, 1];

    [Fact]
    public void ReadsConsecutiveAttributesWithAbsoluteOffsets()
    {
        var r = new AttributeReader(TableAttrs, 20);
        Assert.True(r.TryRead(out var name));
        Assert.Equal(1, name.Type);
        Assert.Equal("t", name.String());
        Assert.Equal(20, name.Offset);
        Assert.True(r.TryRead(out var flags));
        Assert.Equal(2, flags.Type);
        Assert.Equal(1u, flags.U32Be());
        Assert.Equal(28, flags.Offset);
        Assert.False(r.TryRead(out _));
    }

    [Theory]
    [InlineData(new byte[] { 3, 0, 1, 0 })]              // length below the header
    [InlineData(new byte[] { 12, 0, 1, 0, 1, 2, 3, 4 })] // length beyond the buffer
    public void MalformedLengthIsEinvalAtItsOffset(byte[] bytes)
    {
        var ex = Assert.Throws<NetlinkException>(() =>
        {
            var r = new AttributeReader(bytes, 100);
            r.TryRead(out _);
        });
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(100, ex.Offset);
    }

    [Fact]
    public void WrongScalarSizeIsEinval()
    {
        var ex = Assert.Throws<NetlinkException>(() =>
        {
            var r = new AttributeReader(TableAttrs, 0);
            r.TryRead(out var name);
            name.U32Be();
        });
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(0, ex.Offset);
    }

    [Fact]
    public void NestedReaderKeepsAbsoluteOffsets()
    {
        var w = new NetlinkWriter();
        var n = w.BeginNested(3);
        w.PutU32Be(1, 7);
        w.PutString(2, "abc");
        w.EndNested(n);
        var bytes = w.ToArray();
        Assert.Equal(new byte[] { 20, 0, 3, 0x80, 8, 0, 1, 0, 0, 0, 0, 7, 8, 0, 2, 0, (byte)'a', (byte)'b', (byte)'c', 0 }, bytes);

        var r = new AttributeReader(bytes, 50);
        Assert.True(r.TryRead(out var outer));
        Assert.True(outer.IsNested);
        var t = outer.Table(2);
        Assert.Equal(7u, t[1].U32Be());
        Assert.Equal(62, t[2].Offset); // 50 + nest header 4 + first attribute 8
        Assert.Equal("abc", t[2].String());
    }

    [Fact]
    public void TableKeepsLastOfRepeatedTypesAndIgnoresUnknown()
    {
        var w = new NetlinkWriter();
        w.PutU32Be(1, 1);
        w.PutU32Be(1, 2);
        w.PutU32Be(9, 3);
        var t = AttributeTable.Parse(w.WrittenSpan, 0, 2);
        Assert.Equal(2u, t[1].U32Be());
        Assert.False(t.Has(2));
        Assert.False(t.Has(9));
    }

    [Fact]
    public void TableInCallerSlotsIsTheSameTableAndForgetsTheSlotsOldContents()
    {
        var w = new NetlinkWriter();
        w.PutU32Be(1, 1);
        w.PutU32Be(1, 2);
        w.PutU32Be(9, 3);
        Span<AttributeTable.Slot> slots = stackalloc AttributeTable.Slot[3];
        // the same slots hold another message's table first: parsing again must not keep its attribute 2
        var other = new NetlinkWriter();
        other.PutU32Be(2, 5);
        Assert.True(AttributeTable.Parse(other.WrittenSpan, 0, slots).Has(2));
        var t = AttributeTable.Parse(w.WrittenSpan, 40, slots);
        var reference = AttributeTable.Parse(w.WrittenSpan, 40, 2);
        Assert.Equal(2, t.MaxType);
        Assert.Equal(2u, t[1].U32Be());
        Assert.Equal(reference[1].Offset, t[1].Offset);
        Assert.False(t.Has(2));
        Assert.False(t.Has(9));
    }

    [Fact]
    public void StringLongerThanLimitIsErange()
    {
        var w = new NetlinkWriter();
        w.PutString(1, new string('x', 300));
        var ex = Assert.Throws<NetlinkException>(() =>
        {
            var r = new AttributeReader(w.WrittenSpan, 0);
            r.TryRead(out var a);
            a.String(256);
        });
        Assert.Equal(Errno.ERANGE, ex.Errno);
    }

    [Fact]
    public void StringThatIsNotUtf8IsEinvalAtItsOffset()
    {
        // "d1a" then a lone continuation byte: decoded lossily it would come back as a longer name.
        byte[] bytes = [9, 0, 1, 0, (byte)'d', (byte)'1', (byte)'a', 0xbf, 0, 0, 0, 0];
        var ex = Assert.Throws<NetlinkException>(() =>
        {
            var r = new AttributeReader(bytes, 40);
            r.TryRead(out var a);
            a.String(15);
        });
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(40, ex.Offset);
    }

    [Fact]
    public void Utf8StringDecodes()
    {
        var w = new NetlinkWriter();
        w.PutString(1, "filtre-été");
        var r = new AttributeReader(w.WrittenSpan, 0);
        Assert.True(r.TryRead(out var a));
        Assert.Equal("filtre-été", a.String(15));
    }
}
