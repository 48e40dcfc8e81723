using Nft.Bytecode;

namespace Nft.Lifter;

/// <summary>nft's names of the NFPROTO_* table families.</summary>
public static class FamilyNames
{
    public static string Of(byte family) => family switch
    {
        NfProto.Inet => "inet",
        NfProto.Ipv4 => "ip",
        NfProto.Arp => "arp",
        NfProto.Netdev => "netdev",
        NfProto.Bridge => "bridge",
        NfProto.Ipv6 => "ip6",
        _ => $"family{family}",
    };
}
