using System.Buffers;
using System.Buffers.Binary;
using Nft.Netlink;

namespace Nft.Netlink.Tests;

public class MessageTests
{
    static byte[] NewTable(uint seq, string name)
    {
        var w = new NetlinkWriter();
        var m = w.BeginNfMessage(Nfnl.SubsysNftables, 0, NlmFlags.Request | NlmFlags.Create, seq, 0, 2, 0);
        w.PutString(1, name);
        w.PutU32Be(2, 0);
        w.EndMessage(m);
        return w.ToArray();
    }

    [Fact]
    public void WriterProducesTheBytesNftSendsForNewTable()
    {
        // nft --debug=mnl add table ip t: 0x0a00 type, REQUEST|CREATE, family 2, name "t", flags 0.
        byte[] expected =
        [
            36, 0, 0, 0, 0x00, 0x0a, 0x01, 0x04, 5, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0,
            6, 0, 1, 0, (byte)'t', 0, 0, 0,
            8, 0, 2, 0, 0, 0, 0, 0,
        ];
        Assert.Equal(expected, NewTable(5, "t"));
    }

    [Fact]
    public void ReaderIteratesABatchAndFlagsTrailingGarbage()
    {
        var batch = NewTable(1, "a").Concat(NewTable(2, "bb")).Concat(new byte[] { 1, 2, 3 }).ToArray();
        var r = new NetlinkMessageReader(batch);
        var seqs = new List<uint>();
        while (r.TryRead(out var m))
        {
            seqs.Add(m.Header.Seq);
            Assert.True(m.IsNfTables);
            Assert.Equal(2, m.GenMsg.Family);
        }
        Assert.Equal(new uint[] { 1, 2 }, seqs);
        Assert.True(r.Malformed);
        Assert.Equal(3, r.Rest.Length);
    }

    [Fact]
    public void AttributeOffsetsAreFromTheMessageStart()
    {
        var r = new NetlinkMessageReader(NewTable(1, "t"));
        Assert.True(r.TryRead(out var m));
        var t = m.AttributeTable(2);
        Assert.Equal(20, t[1].Offset);
        Assert.Equal(28, t[2].Offset);
    }

    [Fact]
    public void ErrorCarriesTheRequestAndExtack()
    {
        var req = NewTable(9, "t");
        var h = NlMsgHeader.Read(req);
        var w = new NetlinkWriter();
        NetlinkAck.Write(w, req, h, Errno.EEXIST, 1234, "table exists", 20);
        var err = w.ToArray();
        var eh = NlMsgHeader.Read(err);
        Assert.Equal(NlMsgType.Error, eh.Type);
        Assert.Equal(NlmFlags.AckTlvs, eh.Flags);
        Assert.Equal(9u, eh.Seq);
        Assert.Equal(1234u, eh.Pid);
        Assert.Equal((uint)err.Length, eh.Length);
        Assert.Equal(-Errno.EEXIST, BinaryPrimitives.ReadInt32LittleEndian(err.AsSpan(16)));
        Assert.Equal(req, err.AsSpan(20, req.Length).ToArray());
        var tlvs = AttributeTable.Parse(err.AsSpan(20 + req.Length), 0, NlmsgErrAttr.Offs);
        Assert.Equal("table exists", tlvs[NlmsgErrAttr.Msg].String());
        Assert.Equal(20u, tlvs[NlmsgErrAttr.Offs].U32());
    }

    [Fact]
    public void AckIsCappedAndCarriesOnlyTheHeader()
    {
        var req = NewTable(3, "t");
        var w = new NetlinkWriter();
        NetlinkAck.Write(w, req, NlMsgHeader.Read(req), 0, 7);
        var ack = w.ToArray();
        Assert.Equal(36, ack.Length);
        Assert.Equal(NlmFlags.Capped, NlMsgHeader.Read(ack).Flags);
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(ack.AsSpan(16)));
    }

    [Fact]
    public void DoneIsMultiWithZeroPayload()
    {
        var w = new NetlinkWriter();
        NetlinkAck.WriteDone(w, 4, 1);
        Assert.Equal(new byte[] { 20, 0, 0, 0, 3, 0, 2, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 }, w.ToArray());
    }

    [Fact]
    public void DaemonFramesRoundTripAndWaitForWholeFrames()
    {
        var buf = new ArrayBufferWriter<byte>();
        DaemonFrame.WriteRequest(buf, 77, NewTable(1, "t"));
        var bytes = buf.WrittenSpan.ToArray();
        var partial = new ReadOnlySequence<byte>(bytes, 0, bytes.Length - 1);
        Assert.False(DaemonFrame.TryReadRequest(ref partial, out _, out _));
        var whole = new ReadOnlySequence<byte>(bytes);
        Assert.True(DaemonFrame.TryReadRequest(ref whole, out var pid, out var payload));
        Assert.Equal(77u, pid);
        Assert.Equal(NewTable(1, "t"), payload);
        Assert.True(whole.IsEmpty);

        var reply = new ArrayBufferWriter<byte>();
        DaemonFrame.WriteReply(reply, [new byte[] { 1, 2 }, new byte[] { 3 }]);
        var rs = new ReadOnlySequence<byte>(reply.WrittenMemory);
        Assert.True(DaemonFrame.TryReadReply(ref rs, out var dgrams));
        Assert.Equal(2, dgrams.Count);
        Assert.Equal(new byte[] { 3 }, dgrams[1]);
        Assert.True(rs.IsEmpty);
    }

    [Fact]
    public void TruncateDropsAnOverflowingMessageAndRawNestsKeepTheirType()
    {
        var w = new NetlinkWriter();
        var first = NewTable(1, "a");
        w.WriteRaw(first);
        int keep = w.Length;
        var n = w.BeginNestedRaw(3); // nf_tables dumps open nests without NLA_F_NESTED
        w.PutU32Be(1, 7);
        w.EndNested(n);
        Assert.Equal(new byte[] { 12, 0, 3, 0, 8, 0, 1, 0, 0, 0, 0, 7 }, w.WrittenSpan[keep..].ToArray());
        w.Truncate(keep);
        Assert.Equal(first, w.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => w.Truncate(keep + 1));
    }

    [Fact]
    public void OversizedRequestFrameIsRefused()
    {
        var h = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(h, DaemonFrame.MaxRequest + 1u);
        var s = new ReadOnlySequence<byte>(h);
        Assert.Throws<InvalidDataException>(() => DaemonFrame.TryReadRequest(ref s, out _, out _));
    }
}
