using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// Collects the messages of one dump into datagrams the way netlink_dump fills skbs: whole messages,
/// a new datagram when the next one would pass the chunk size, NLMSG_DONE on its own at the end.
/// </summary>
internal sealed class DumpWriter
{
    readonly List<byte[]> _out;
    readonly uint _seq, _port;
    public readonly NetlinkWriter B = new(4096);
    int _msgStart;

    public DumpWriter(List<byte[]> output, uint seq, uint port)
    {
        _out = output;
        _seq = seq;
        _port = port;
    }

    /// <summary>Call before writing each message.</summary>
    public void Begin() => _msgStart = B.Length;

    /// <summary>Call after writing each message: spills the previous messages if this one overflowed.</summary>
    public void End()
    {
        if (B.Length > DaemonFrame.DumpChunk && _msgStart > 0)
        {
            _out.Add(B.WrittenSpan[.._msgStart].ToArray());
            var rest = B.WrittenSpan[_msgStart..].ToArray();
            B.Clear();
            B.WriteRaw(rest);
        }
    }

    /// <summary>Sends what is pending as one datagram.</summary>
    public void Flush()
    {
        if (B.Length > 0) _out.Add(B.ToArray());
        B.Clear();
    }

    /// <summary>Ends the dump: pending messages, then NLMSG_DONE in a datagram of its own (or with nothing before it).</summary>
    public void Done()
    {
        Flush();
        AppendDone();
        Flush();
    }

    public void AppendDone()
    {
        NetlinkAck.WriteDone(B, _seq, _port);
    }
}
