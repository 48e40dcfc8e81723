using Nft.Bytecode.Expressions;

namespace Nft.Lifter;

/// <summary>
/// Why an extension-header or option match (nft's `exthdr`) is refused, naming the statement nft printed.
/// Kept as refusals because the kernel's answers cannot be reproduced exactly yet: IPv4 options are judged
/// after __ip_options_compile validates every option of the header; IPv6 headers are found by
/// ipv6_find_hdr, which walks any number of extension headers while the BPF prologue stops after
/// <c>MaxIpv6ExtensionHeaders</c> (8), so presence beyond that would be guessed.
/// </summary>
internal static class ExthdrRefusal
{
    public static string Reason(ExthdrExpr x)
    {
        bool present = x.Flags is { } f && (f & ExthdrExpr.NFT_EXTHDR_F_PRESENT) != 0;
        string what = x.Op switch
        {
            ExthdrExpr.OpIpv4 => $"ip option {Ipv4Option(x.Type)}{Detail(x, present)}",
            ExthdrExpr.OpTcpOpt => $"tcp option {x.Type}{Detail(x, present)}",
            ExthdrExpr.OpSctp => $"sctp chunk {x.Type}{Detail(x, present)}",
            ExthdrExpr.OpDccp => $"dccp option {x.Type}{Detail(x, present)}",
            _ => $"exthdr {Ipv6Header(x.Type)}{Detail(x, present)}",
        };
        string why = x.Op switch
        {
            ExthdrExpr.OpIpv4 => "the kernel answers only after validating every option of the header (__ip_options_compile), " +
                "which bpfilter-nft does not reproduce",
            ExthdrExpr.OpTcpOpt or ExthdrExpr.OpSctp or ExthdrExpr.OpDccp => "bpfilter-nft does not parse transport options",
            _ => "the kernel's ipv6_find_hdr walks any number of extension headers, bpfilter-nft's prologue stops after 8, " +
                "so the answer for longer chains would be a guess",
        };
        if (x.SReg != null) return $"expression 'exthdr' writing packet data ({what}) is not supported by bpfilter-nft";
        return $"expression 'exthdr' ({what}) is not supported by bpfilter-nft: {why}";
    }

    static string Detail(ExthdrExpr x, bool present) =>
        present ? " exists" : $" @ offset {x.Offset ?? 0}, {x.Len ?? 0} byte(s)";

    static string Ipv4Option(byte t) => t switch
    {
        7 => "rr", 148 => "ra", 131 => "lsrr", 137 => "ssrr", 68 => "ts", _ => t.ToString(),
    };

    static string Ipv6Header(byte t) => t switch
    {
        0 => "hbh", 43 => "rt", 44 => "frag", 51 => "ah", 60 => "dst", 135 => "mh", _ => t.ToString(),
    };
}
