using System.Buffers;
using System.Buffers.Binary;

namespace Nft.Netlink;

/// <summary>
/// Framing between the interposer and bpfilterd over a Unix stream socket.
/// Request: u32 length, u32 netlink port id, then exactly the bytes nft passed to one send call.
/// Reply (exactly one per request): u32 length, u32 datagram count, then per datagram u32 length
/// and the bytes the kernel would have queued as one skb (an ACK, an error, a dump chunk, an echo).
/// All integers little-endian (host order on our targets).
/// </summary>
public static class DaemonFrame
{
    public const int HeaderSize = 8;
    /// <summary>Largest request accepted: far above any nft batch, small enough to refuse abuse.</summary>
    public const int MaxRequest = 64 << 20;
    /// <summary>Dump datagrams are cut near this size, as the kernel's netlink_dump fills skbs.</summary>
    public const int DumpChunk = 16384;

    /// <summary>
    /// Control request of the interposer, never a kernel message (types below NLMSG_MIN_TYPE are netlink's
    /// own): an nlmsghdr of this type and a u32 group mask (bit g-1 for group g, as sockaddr_nl.nl_groups),
    /// the socket's multicast memberships. Answered by a frame holding one 4-byte datagram: 0 or an errno.
    /// From then on the connection also carries event frames, unasked: the datagrams of one multicast, or
    /// none when events were lost (the subscriber's ENOBUFS). The interposer gives events their own connection.
    /// </summary>
    public const ushort GroupsType = 0x0F;

    /// <summary>
    /// nlmsg_seq and nlmsg_pid of a GROUPS request: a client's own message of type 0x0F (which the kernel
    /// ignores, below NLMSG_MIN_TYPE) must reach the engine and be answered as the kernel would, so the
    /// control request is told apart by these too.
    /// </summary>
    public const uint GroupsSeq = 0x544E4642, GroupsPid = 0xFFFFFFFF; // "BFNT"

    public static bool TryReadGroups(ReadOnlySpan<byte> payload, out uint groups)
    {
        groups = 0;
        if (payload.Length != NlMsgHeader.Size + 4) return false;
        var h = NlMsgHeader.Read(payload);
        if (h.Type != GroupsType || h.Length != payload.Length || h.Seq != GroupsSeq || h.Pid != GroupsPid) return false;
        groups = BinaryPrimitives.ReadUInt32LittleEndian(payload[NlMsgHeader.Size..]);
        return true;
    }

    public static byte[] GroupsRequest(uint groups)
    {
        var b = new byte[NlMsgHeader.Size + 4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)b.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), GroupsType);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), GroupsSeq);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), GroupsPid);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(NlMsgHeader.Size), groups);
        return b;
    }

    public static byte[] GroupsAnswer(int errno)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, errno);
        return b;
    }

    public static bool TryReadRequest(ref ReadOnlySequence<byte> buffer, out uint portId, out byte[] payload)
    {
        portId = 0;
        payload = [];
        if (buffer.Length < HeaderSize) return false;
        Span<byte> h = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(h);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(h);
        if (len > MaxRequest) throw new InvalidDataException($"request frame of {len} bytes exceeds {MaxRequest}");
        if (buffer.Length < HeaderSize + len) return false;
        portId = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        payload = buffer.Slice(HeaderSize, len).ToArray();
        buffer = buffer.Slice(HeaderSize + len);
        return true;
    }

    public static void WriteRequest(IBufferWriter<byte> w, uint portId, ReadOnlySpan<byte> payload)
    {
        var s = w.GetSpan(HeaderSize + payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], portId);
        payload.CopyTo(s[HeaderSize..]);
        w.Advance(HeaderSize + payload.Length);
    }

    public static void WriteReply(IBufferWriter<byte> w, IReadOnlyList<byte[]> datagrams)
    {
        long total = 0; // bytes after the header: each datagram with its u32 length
        foreach (var d in datagrams) total += 4 + d.Length;
        var h = w.GetSpan(HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)total);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)datagrams.Count);
        w.Advance(HeaderSize);
        foreach (var d in datagrams)
        {
            var s = w.GetSpan(4 + d.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)d.Length);
            d.CopyTo(s[4..]);
            w.Advance(4 + d.Length);
        }
    }

    /// <summary>Reads one reply frame (for tests and tools that talk to the daemon directly).</summary>
    public static bool TryReadReply(ref ReadOnlySequence<byte> buffer, out List<byte[]> datagrams)
    {
        datagrams = [];
        if (buffer.Length < HeaderSize) return false;
        Span<byte> h = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(h);
        uint len = BinaryPrimitives.ReadUInt32LittleEndian(h);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
        if (buffer.Length < HeaderSize + len) return false;
        var body = buffer.Slice(HeaderSize, len).ToArray().AsSpan();
        for (uint i = 0; i < count; i++)
        {
            if (body.Length < 4) throw new InvalidDataException("reply frame truncated");
            int dl = (int)BinaryPrimitives.ReadUInt32LittleEndian(body);
            if (dl < 0 || dl > body.Length - 4) throw new InvalidDataException("reply datagram overruns its frame");
            datagrams.Add(body.Slice(4, dl).ToArray());
            body = body[(4 + dl)..];
        }
        buffer = buffer.Slice(HeaderSize + len);
        return true;
    }
}
