namespace Nft.Engine;

/// <summary>
/// One datagram the kernel multicasts to the NFNLGRP_NFTABLES group after a commit (what `nft monitor`
/// reads): the changes of a batch in commit order, then NEWGEN. <see cref="ExcludePort"/> is the requester
/// when the datagram carries notifications it asked to have echoed (nlmsg_notify's exclude_portid): it got
/// them as its reply and must not get them twice.
/// </summary>
public readonly record struct NetlinkEvent(byte[] Datagram, uint? ExcludePort)
{
    /// <summary>The nfnetlink multicast group of nf_tables events (NFNLGRP_NFTABLES).</summary>
    public const int GroupNftables = 7;
    /// <summary>The nf_tables trace group (NFNLGRP_NFTRACE): the daemon relays the kernel's traces of kernel-placed chains to it.</summary>
    public const int GroupTrace = 9;
}
