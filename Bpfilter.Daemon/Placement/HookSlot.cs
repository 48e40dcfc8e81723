using Nft.Bytecode;
using Nft.Bytecode.Objects;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// Which packet path a base chain sits on, in the terms that decide the order of BPF and kernel
/// chains: a netfilter hook list (NFPROTO_IPV4/IPV6 × hook; an inet chain is on both) where
/// BPF_NETFILTER links and nf_tables chains are ordered together by priority; or a device's
/// ingress/egress, where XDP/tcx runs before (ingress) or after (egress) every nf_tables chain.
/// </summary>
internal readonly record struct HookSlot(byte Family, uint Hook, string? Device)
{
    // NF_INET_* and NF_NETDEV_* hook numbers
    const uint InetIngress = 5, NetdevIngress = 0, NetdevEgress = 1;

    public bool IsDevice => Device != null;
    public bool IsIngress => Hook == NetdevIngress;

    /// <summary>The slots a base chain occupies; empty for families BPF never runs (arp, bridge).</summary>
    public static IReadOnlyList<HookSlot> Of(byte family, Chain chain)
    {
        if (chain.Hook is not { HookNum: { } hook }) return [];
        switch (family)
        {
            case NfProto.Ipv4 or NfProto.Ipv6 when hook < InetIngress:
                return [new HookSlot(family, hook, null)];
            case NfProto.Inet when hook < InetIngress:
                return [new HookSlot(NfProto.Ipv4, hook, null), new HookSlot(NfProto.Ipv6, hook, null)];
            case NfProto.Inet when hook == InetIngress:
                return chain.Hook.AllDevices.Select(d => new HookSlot(NfProto.Netdev, NetdevIngress, d)).ToList();
            case NfProto.Netdev when hook is NetdevIngress or NetdevEgress:
                return chain.Hook.AllDevices.Select(d => new HookSlot(NfProto.Netdev, hook, d)).ToList();
            default:
                return [];
        }
    }
}
