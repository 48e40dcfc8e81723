using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// What a rule's fields require of the packet before any of them can be read: flag bits that must
/// be set, a transport header (not a non-first fragment: only for fields the kernel loads through
/// nft_payload_eval, see <see cref="PayloadField.FastLoad"/>), a network protocol and a transport
/// protocol. Checked once at the top of the rule.
/// </summary>
internal sealed record Dependencies(int RequiredFlags, bool NeedsTransportHeader, int? EtherType, int? L4Proto)
{
    /// <summary>Null when the fields contradict each other (e.g. tcp and udp): the rule never matches.</summary>
    public static Dependencies? Of(IEnumerable<MatchKey> keys)
    {
        var flags = 0;
        var transport = false;
        int? ether = null, l4 = null;
        var ok = true;
        void Ether(int t) { if (ether is { } e && e != t) ok = false; ether = t; }
        void L4(int p) { if (l4 is { } e && e != p) ok = false; l4 = p; }
        foreach (var f in keys.SelectMany(k => k.Fields))
        {
            switch (f)
            {
                case MetaField { Key: MetaKey.L4Proto }:
                    flags |= HasL4Proto;
                    break;
                case PayloadField p:
                    switch (p.Protocol)
                    {
                        case HeaderProtocol.Vlan: flags |= HasVlan; break;
                        case HeaderProtocol.Ip: flags |= HasNetwork; Ether(EtherTypeIpv4); break;
                        case HeaderProtocol.Ip6: flags |= HasNetwork; Ether(EtherTypeIpv6); break;
                        case HeaderProtocol.Tcp: L4(6); break;
                        case HeaderProtocol.Udp: L4(17); break;
                        case HeaderProtocol.Icmp: L4(1); break;
                        case HeaderProtocol.Icmpv6: L4(58); break;
                    }
                    if (p.Base == PayloadBase.Network) flags |= HasNetwork;
                    if (p.Base == PayloadBase.Transport) { flags |= HasL4Proto; transport |= p.FastLoad is null; }
                    break;
            }
        }
        return ok ? new Dependencies(flags, transport, ether, l4) : null;
    }
}
