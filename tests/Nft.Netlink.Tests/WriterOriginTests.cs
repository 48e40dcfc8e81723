using Nft.Netlink;

namespace Nft.Netlink.Tests;

/// <summary>
/// A writer at an origin in a caller's buffer (the state file's records after its header, <c>StateCodec.Encode</c>) writes
/// the bytes a writer from 0 writes: padding, message and nest lengths and overwrites are relative to the origin, whatever
/// its alignment, and the caller's bytes before it survive the buffer growing.
/// </summary>
public class WriterOriginTests
{
    static void Write(NetlinkWriter w)
    {
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, 6, NlmFlags.Request, 7, 0, 2, 0);
        w.PutString(1, "t");
        var n = w.BeginNestedRaw(4);
        w.PutRaw(1, [1, 2, 3]);
        w.PutU8(2, 9);
        w.EndNested(n);
        var nested = w.BeginNested(5);
        w.PutU32Be(1, 0xdeadbeef);
        w.EndNested(nested);
        w.EndMessage(m);
        w.WriteRaw([0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
        w.Overwrite(w.Length - 8, [0x11]);
    }

    [Theory]
    [InlineData(0, 4096)]
    [InlineData(1, 4096)]
    [InlineData(3, 4096)]
    [InlineData(6, 4096)]
    [InlineData(5, 9)] // grows at once
    [InlineData(7, 7)] // nothing after the origin
    public void AWriterAtAnOriginWritesTheBytesOfAWriterFromZero(int origin, int size)
    {
        var plain = new NetlinkWriter(16);
        Write(plain);

        var buffer = new byte[size];
        for (int i = 0; i < size; i++) buffer[i] = 0x5a; // as uninitialized: every written byte must be set
        for (int i = 0; i < origin; i++) buffer[i] = (byte)(i + 1);
        var at = new NetlinkWriter(buffer, origin);
        Write(at);

        Assert.Equal(plain.Length, at.Length);
        Assert.Equal(plain.ToArray(), at.ToArray());
        Assert.Equal(plain.ToArray(), at.Buffer.AsSpan(origin, at.Length).ToArray());
        for (int i = 0; i < origin; i++) Assert.Equal((byte)(i + 1), at.Buffer[i]);
    }

    [Fact]
    public void AnOriginPastTheBufferIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new NetlinkWriter(new byte[4], 5));
}
