namespace Nft.Netlink;

/// <summary>One netlink message: its header and the whole message bytes (header included).</summary>
public readonly ref struct NetlinkMessage
{
    public readonly NlMsgHeader Header;
    public readonly ReadOnlySpan<byte> Bytes;

    public NetlinkMessage(NlMsgHeader header, ReadOnlySpan<byte> bytes)
    {
        Header = header;
        Bytes = bytes;
    }

    /// <summary>Everything after the nlmsghdr.</summary>
    public ReadOnlySpan<byte> Body => Bytes[NlMsgHeader.Size..];

    public bool IsNfTables => Nfnl.Subsys(Header.Type) == Nfnl.SubsysNftables;

    /// <summary>The nfgenmsg of an nfnetlink message; EINVAL if the body is too short for one.</summary>
    public NfGenMsg GenMsg => Body.Length >= NfGenMsg.Size
        ? NfGenMsg.Read(Body)
        : throw new NetlinkException(Errno.EINVAL, "message too short for nfgenmsg"); // nfnetlink blames no attribute

    /// <summary>Attributes after the nfgenmsg, with offsets relative to this message's start.</summary>
    public AttributeReader Attributes()
    {
        _ = GenMsg;
        return new AttributeReader(Bytes[(NlMsgHeader.Size + NfGenMsg.Size)..], NlMsgHeader.Size + NfGenMsg.Size);
    }

    public AttributeTable AttributeTable(int maxType)
    {
        _ = GenMsg;
        return Netlink.AttributeTable.Parse(Bytes[(NlMsgHeader.Size + NfGenMsg.Size)..], NlMsgHeader.Size + NfGenMsg.Size, maxType);
    }
}

/// <summary>
/// Iterates the messages of one buffer (one sendmsg). A header whose length is impossible ends
/// iteration with <see cref="Malformed"/> set, so the caller can answer it with an error.
/// </summary>
public ref struct NetlinkMessageReader
{
    readonly ReadOnlySpan<byte> _buf;
    int _pos;

    public NetlinkMessageReader(ReadOnlySpan<byte> buffer)
    {
        _buf = buffer;
        _pos = 0;
    }

    public readonly int Position => _pos;
    public readonly int Remaining => _buf.Length - _pos;
    /// <summary>Set when iteration stopped at bytes that are not a well-formed message.</summary>
    public bool Malformed { get; private set; }
    /// <summary>The bytes at which iteration stopped because they were malformed.</summary>
    public readonly ReadOnlySpan<byte> Rest => _buf[_pos..];

    public bool TryRead(out NetlinkMessage msg)
    {
        msg = default;
        int remaining = _buf.Length - _pos;
        if (remaining == 0 || Malformed) return false;
        if (remaining < NlMsgHeader.Size) { Malformed = true; return false; }
        var h = NlMsgHeader.Read(_buf[_pos..]);
        if (h.Length < NlMsgHeader.Size || h.Length > remaining) { Malformed = true; return false; }
        msg = new NetlinkMessage(h, _buf.Slice(_pos, (int)h.Length));
        _pos = Math.Min(_buf.Length, _pos + NetlinkLimits.Align((int)h.Length));
        return true;
    }
}
