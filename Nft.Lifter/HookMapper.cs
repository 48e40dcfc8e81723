using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using NftChain = Nft.Bytecode.Objects.Chain;

namespace Nft.Lifter;

/// <summary>A base chain's attach points (one per device for netdev chains) and whether its packets carry the Ethernet header.</summary>
internal sealed record Attachment(IReadOnlyList<Hook> Hooks, bool LinkLayer);

/// <summary>Maps nf_tables base chain hooks to backend attach points (design.md, "Where each chain runs").</summary>
internal static class HookMapper
{
    public static Attachment Map(TableContext table, NftChain chain)
    {
        var name = chain.Name ?? "";
        LiftException Refuse(string reason) => new(table.Family, table.Name, name, null, -1, reason);
        var hook = chain.Hook!;
        var type = chain.Type ?? "filter";
        if (type != "filter") throw Refuse($"chain type {type} is not supported by bpfilter-nft (only filter)");
        if (hook.HookNum is not { } num) throw Refuse("base chain without a hook number");
        int prio = hook.Priority ?? 0;
        var devices = hook.AllDevices;
        switch (table.Family)
        {
            case NfProto.Netdev:
                if (devices.Count == 0) throw Refuse("netdev base chain without a device is not supported by bpfilter-nft");
                return num switch
                {
                    NfHooks.NetdevIngress => new(devices.Select(d => (Hook)new XdpIngress(d)).ToList(), true),
                    NfHooks.NetdevEgress => new(devices.Select(d => (Hook)new TcEgress(d)).ToList(), true),
                    _ => throw Refuse($"netdev hook {num} is not supported by bpfilter-nft"),
                };
            case NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Inet:
                var fam = table.Family switch { NfProto.Ipv4 => NfFamily.Ipv4, NfProto.Ipv6 => NfFamily.Ipv6, _ => NfFamily.Inet };
                if (num <= NfHooks.PostRouting)
                    return new([new NetfilterHook(fam, (NfHookPoint)num, prio)], false);
                if (num == NfHooks.Ingress && table.Family == NfProto.Inet)
                {
                    if (devices.Count == 0) throw Refuse("inet ingress chain without a device is not supported by bpfilter-nft");
                    return new(devices.Select(d => (Hook)new XdpIngress(d, IpOnly: true)).ToList(), true);
                }
                throw Refuse($"hook {num} is not supported by bpfilter-nft");
            default:
                throw Refuse($"{FamilyNames.Of(table.Family)} family base chains are not supported by bpfilter-nft");
        }
    }
}
