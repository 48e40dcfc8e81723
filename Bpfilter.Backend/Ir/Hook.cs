namespace Bpfilter.Backend.Ir;

/// <summary>Where a base chain runs (design.md, "Where each chain runs").</summary>
public abstract record Hook
{
    /// <summary>The verdict returned for a packet that leaves every chain with accept.</summary>
    public abstract string AttachPoint { get; }
}

/// <summary>
/// XDP on a device (netdev ingress). IpOnly: the chain sees only IPv4/IPv6 packets, everything else
/// passes untouched (inet ingress).
/// </summary>
public sealed record XdpIngress(string Device, bool IpOnly = false) : Hook
{
    public override string AttachPoint => $"xdp {Device}";
    public override string ToString() => $"xdp ingress device {Device}{(IpOnly ? " ip-only" : "")}";
}

/// <summary>TC ingress (tcx link) on a device; the alternative to XDP for netdev ingress.</summary>
public sealed record TcIngress(string Device, bool IpOnly = false) : Hook
{
    public override string AttachPoint => $"tcx ingress {Device}";
    public override string ToString() => $"tc ingress device {Device}{(IpOnly ? " ip-only" : "")}";
}

/// <summary>TC egress (tcx link) on a device (netdev egress).</summary>
public sealed record TcEgress(string Device, bool IpOnly = false) : Hook
{
    public override string AttachPoint => $"tcx egress {Device}";
    public override string ToString() => $"tc egress device {Device}{(IpOnly ? " ip-only" : "")}";
}

public enum NfFamily { Ipv4, Ipv6, Inet }

/// <summary>Netfilter hook numbers as in linux/netfilter.h (NF_INET_*).</summary>
public enum NfHookPoint { Prerouting = 0, Input = 1, Forward = 2, Output = 3, Postrouting = 4 }

/// <summary>A netfilter hook reached through a BPF_NETFILTER link; packets start at the network header.</summary>
public sealed record NetfilterHook(NfFamily Family, NfHookPoint Point, int Priority) : Hook
{
    public override string AttachPoint => $"netfilter {Family} {Point} {Priority}";
    public override string ToString() =>
        $"netfilter {Family.ToString().ToLowerInvariant()} {Point.ToString().ToLowerInvariant()} priority {Priority}";
}
