namespace Bpfilter.Daemon.Server;

/// <summary>
/// What the socket server hands each request to: the bytes of one send call from nft and the
/// sender's netlink port id; returns the datagrams the kernel would queue for that sender, in order.
/// Implementations never throw for bad input: malformed messages become NLMSG_ERROR datagrams.
/// </summary>
public interface INetlinkEndpoint
{
    IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId);

    /// <summary>As <see cref="Process(ReadOnlySpan{byte}, uint)"/>; a non-null <paramref name="events"/> (someone
    /// listens to NFNLGRP_NFTABLES) receives the datagrams a commit multicasts. Endpoints without events ignore it.</summary>
    IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId, List<Nft.Engine.NetlinkEvent>? events) => Process(request, portId);

    /// <summary>The requester's socket closed (the kernel's NETLINK_URELEASE): release what that port owned.</summary>
    void Release(uint portId) { }
}
