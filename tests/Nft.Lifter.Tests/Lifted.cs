using Bpfilter.Backend.Ir;

namespace Nft.Lifter.Tests;

/// <summary>Fields as the lifter gives them: transport fields nft loads whole carry the kernel's fast-path load.</summary>
public static class Lifted
{
    public static readonly PayloadField TcpDport = Fields.Tcp.Dport with { FastLoad = new PayloadLoad(2, 2) };
    public static readonly PayloadField IcmpType = Fields.Icmp.Type with { FastLoad = new PayloadLoad(0, 1) };
}
