namespace Nft.Netlink;

/// <summary>
/// A request the emulated kernel refuses: errno, the extack text, and the absolute offset
/// (from the start of the offending nlmsghdr) of the attribute to blame, or -1 for none.
/// Raised by decoders and handlers; turned into NLMSG_ERROR at the message boundary.
/// </summary>
public class NetlinkException : Exception
{
    public int Errno { get; }
    public int Offset { get; }
    public string? ExtAck { get; }

    public NetlinkException(int errno, string? extack = null, int offset = -1)
        : base(extack ?? $"errno {errno}")
    {
        Errno = errno;
        ExtAck = extack;
        Offset = offset;
    }
}
