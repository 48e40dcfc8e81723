using Nft.Netlink;

namespace Bpfilter.Daemon.Server;

/// <summary>
/// What nfnetlink answers a sender without CAP_NET_ADMIN: the first message of each send gets
/// NLMSG_ERROR EPERM (no extack), nothing else is looked at, no state is touched. A send whose
/// first header is not even a whole message is dropped silently, as nfnetlink_rcv does.
/// </summary>
public static class PermissionDenied
{
    public static IReadOnlyList<byte[]> Reply(ReadOnlySpan<byte> request, uint portId)
    {
        if (request.Length < NlMsgHeader.Size) return [];
        var h = NlMsgHeader.Read(request);
        if (h.Length < NlMsgHeader.Size || h.Length > request.Length) return [];
        var w = new NetlinkWriter(64 + (int)h.Length);
        NetlinkAck.Write(w, request[..(int)h.Length], h, Errno.EPERM, portId);
        return [w.ToArray()];
    }
}
