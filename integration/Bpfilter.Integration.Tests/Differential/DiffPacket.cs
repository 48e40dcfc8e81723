using System.Net;
using Bpfilter.Integration.Tests.Packets;

namespace Bpfilter.Integration.Tests.Differential;

/// <summary>
/// A generated packet, field by field, before it becomes a packet line of the corpus format
/// (integration/corpus/packets/README.md): the generator sets the field a rule tests to the
/// rule's constant or a neighbour of it, everything else stays at its default.
/// </summary>
public sealed class DiffPacket
{
    public Origin From = Origin.Peer;
    public bool V6;
    /// <summary>tcp, udp, icmp, icmp6 or none (then <see cref="Proto"/> is the protocol number).</summary>
    public string L4 = "udp";
    public int Proto = 99;
    public UInt128 Src4 = V4("198.19.1.1"), Dst4 = V4("198.18.2.2"), Src6 = V6Addr("2001:db8:ff::1"), Dst6 = V6Addr("2001:db8:2::2");
    public int Ttl = 64, Tos, Id = 0x1234, Df, Flow;
    public int Frags;
    public string? Pick;
    public string? Opts;
    public int Sport = 40000, Dport = 9;
    public int Flags = 0x02, Win = 8192;
    public uint Seq = 1000;
    public int IcmpType = -1, IcmpCode, IcmpId = 0x4242;
    public int? VlanId;
    public int VlanPcp;
    public ulong? EthSrc, EthDst;
    public int DataLen = 32;

    public DiffPacket Clone() => (DiffPacket)MemberwiseClone();

    public static UInt128 V4(string a) => (UInt128)(uint)IPAddress.NetworkToHostOrder(BitConverter.ToInt32(IPAddress.Parse(a).GetAddressBytes()));

    public static UInt128 V6Addr(string a)
    {
        var b = IPAddress.Parse(a).GetAddressBytes();
        UInt128 v = 0;
        foreach (var x in b) v = (v << 8) | x;
        return v;
    }

    public static string FormatAddr(UInt128 v, bool v6)
    {
        if (!v6) return new IPAddress([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]).ToString();
        var b = new byte[16];
        for (int i = 15; i >= 0; i--, v >>= 8) b[i] = (byte)v;
        return new IPAddress(b).ToString();
    }

    public static string FormatMac(ulong m) => string.Join(':', Enumerable.Range(0, 6).Select(i => ((m >> (8 * (5 - i))) & 0xff).ToString("x2")));

    static readonly string[] FlagNames = ["fin", "syn", "rst", "psh", "ack", "urg", "ecn", "cwr"];

    public int L4HeaderLength => L4 switch { "tcp" => 20, "udp" => 8, "icmp" or "icmp6" => 8, _ => 0 };

    public int OptionBytes => Opts == null ? 0 : (Opts.StartsWith("hex:") ? (Opts.Length - 4) / 2 + 3 & ~3 : 4);

    /// <summary>IPv4 total length / IPv6 payload length of the whole (unfragmented) packet.</summary>
    public int IpLength => V6 ? L4HeaderLength + DataLen : 20 + OptionBytes + L4HeaderLength + DataLen;

    public string Line()
    {
        var layers = new List<string>();
        if (From != Origin.Fw)
        {
            if (EthSrc != null || EthDst != null)
                layers.Add("eth" + (EthSrc is { } s ? $" src={FormatMac(s)}" : "") + (EthDst is { } d ? $" dst={FormatMac(d)}" : ""));
            if (VlanId is { } id) layers.Add($"vlan id={id} pcp={VlanPcp}");
        }
        var frag = (Frags > 0 ? $" frags={Frags}" : "") + (Pick != null ? $" pick={Pick}" : "");
        if (V6) layers.Add($"ip6 src={FormatAddr(Src6, true)} dst={FormatAddr(Dst6, true)} hlim={Ttl} tc={Tos} flow={Flow}{frag}");
        else layers.Add($"ip4 src={FormatAddr(Src4, false)} dst={FormatAddr(Dst4, false)} ttl={Ttl} tos={Tos} id={Id} df={Df}" +
            (Opts != null ? $" opts={Opts}" : "") + (L4 == "none" ? $" proto={Proto}" : "") + frag);
        switch (L4)
        {
            case "tcp":
                var names = Enumerable.Range(0, 8).Where(i => (Flags & (1 << i)) != 0).Select(i => FlagNames[i]).ToList();
                layers.Add($"tcp sport={Sport} dport={Dport} flags={(names.Count == 0 ? "none" : string.Join(',', names))} seq={Seq} win={Win}");
                break;
            case "udp": layers.Add($"udp sport={Sport} dport={Dport}"); break;
            case "icmp": layers.Add($"icmp type={(IcmpType < 0 ? 8 : IcmpType)} code={IcmpCode} id={IcmpId}"); break;
            case "icmp6": layers.Add($"icmp6 type={(IcmpType < 0 ? 128 : IcmpType)} code={IcmpCode} id={IcmpId}"); break;
        }
        layers.Add($"data len={DataLen}");
        return string.Join(" / ", layers);
    }
}
