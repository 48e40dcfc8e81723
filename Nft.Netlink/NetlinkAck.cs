using System.Buffers.Binary;

namespace Nft.Netlink;

/// <summary>
/// NLMSG_ERROR replies as the kernel's netlink_ack builds them: an error carries the whole
/// offending request after struct nlmsgerr, then the extack TLVs; an ACK (errno 0) is capped.
/// </summary>
public static class NetlinkAck
{
    /// <param name="request">the whole offending message, header included (may be a truncated header for malformed input)</param>
    /// <param name="errno">positive errno, or 0 for an ACK</param>
    /// <param name="offset">NLMSGERR_ATTR_OFFS: offset of the bad attribute from the start of the request, or -1</param>
    public static void Write(NetlinkWriter w, ReadOnlySpan<byte> request, NlMsgHeader requestHeader, int errno, uint portid,
        string? extack = null, int offset = -1)
    {
        bool isAck = errno == 0;
        bool tlvs = !isAck && (extack != null || offset >= 0);
        var flags = isAck ? NlmFlags.Capped : (tlvs ? NlmFlags.AckTlvs : NlmFlags.None);
        var t = w.BeginMessage(NlMsgType.Error, flags, requestHeader.Seq, portid);
        Span<byte> err = stackalloc byte[4 + NlMsgHeader.Size];
        BinaryPrimitives.WriteInt32LittleEndian(err, -errno);
        requestHeader.Write(err[4..]);
        w.WriteRaw(err);
        if (!isAck && request.Length > NlMsgHeader.Size)
        {
            int bodyLen = Math.Min(request.Length, (int)Math.Max(requestHeader.Length, (uint)NlMsgHeader.Size)) - NlMsgHeader.Size;
            if (bodyLen > 0) w.WriteRaw(request.Slice(NlMsgHeader.Size, bodyLen));
        }
        if (extack != null) w.PutString(NlmsgErrAttr.Msg, extack);
        if (offset >= 0) w.PutU32(NlmsgErrAttr.Offs, (uint)offset);
        w.EndMessage(t);
    }

    public static void WriteDone(NetlinkWriter w, uint seq, uint portid, NlmFlags flags = NlmFlags.Multi)
    {
        var t = w.BeginMessage(NlMsgType.Done, flags, seq, portid);
        w.WriteRaw(stackalloc byte[4]); // int 0, as netlink_dump_done writes
        w.EndMessage(t);
    }
}
