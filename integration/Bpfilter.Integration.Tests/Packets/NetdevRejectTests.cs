using Bpfilter.Backend.Libbpf;
using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// `reject` in a netdev ingress chain, the kernel's against bpfilterd's (XDP_TX): the same frames are
/// sent on a veth from a sender namespace, and the replies captured there (AF_PACKET) must be the same
/// bytes, but the IPv4 TCP checksum, which the kernel leaves partial for the device's offload. The sender's
/// end runs an XDP_PASS program: a veth delivers XDP_TX frames only to a peer whose NAPI runs.
/// Also: `reject` in an inet input chain still answers through the kernel-placed chain.
/// </summary>
public class NetdevRejectTests
{
    const string Rules = """
        table netdev t {
          chain c {
            type filter hook ingress device fw0 priority 0; policy accept;
            meta protocol ip meta l4proto tcp reject with tcp reset
            meta protocol ip udp dport 53 reject
            meta protocol ip udp dport 54 reject with icmpx admin-prohibited
            meta protocol ip meta l4proto icmp reject with icmp host-unreachable
            meta protocol ip meta l4proto dccp reject
          }
        }
        """;

    const string S = "198.51.100.1", D = "198.51.100.2";

    public static IEnumerable<(string Name, byte[] Frame)> Cases()
    {
        yield return ("syn with data", PacketBuilder.Ether().Ipv4(S, D, id: 77).Tcp(40000, 22, seq: 1000).Payload(10));
        yield return ("bare syn, padded to 60 bytes", PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22, seq: 1000));
        yield return ("acked segment", PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22, flags: 0x18, seq: 5, ack: 0xfffffff0).Payload(100));
        yield return ("rst", PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22, flags: 0x04).Payload(10));
        yield return ("tagged syn", PacketBuilder.Ether(vlanId: 20).Ipv4(S, D).Tcp(40000, 22, seq: 3).Payload(10));
        yield return ("udp", PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 53, payload: 31));
        yield return ("udp, icmpx", PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 54, payload: 31));
        yield return ("big udp", PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 53, payload: 1400));
        byte[] noChecksum = PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 53, payload: 20);
        noChecksum[40] = noChecksum[41] = 0;
        yield return ("udp without checksum", noChecksum);
        byte[] badUdp = PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 53, payload: 20);
        badUdp[^1] ^= 1;
        yield return ("udp with a bad checksum", badUdp);
        yield return ("icmp echo", PacketBuilder.Ether().Ipv4(S, D).Icmp(8).Payload(20));
        yield return ("icmp unreachable", PacketBuilder.Ether().Ipv4(S, D).Icmp(3, 3).Payload(28));
        // DCCP's bytes are checked without the pseudo-header (ICMP-style header bytes stand in for it here)
        yield return ("dccp whose bytes sum right", PacketBuilder.Ether().Ipv4(S, D).Icmp(8, proto: 33).Payload(20));
        byte[] badDccp = PacketBuilder.Ether().Ipv4(S, D).Icmp(8, proto: 33).Payload(20);
        badDccp[^1] ^= 1;
        yield return ("dccp with a wrong sum", badDccp);
        yield return ("fragment", PacketBuilder.Ether().Ipv4(S, D, fragment: 0x0010).Tcp(40000, 22).Payload(10));
        byte[] broadcast = PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22).Payload(10);
        broadcast.AsSpan(0, 6).Fill(0xff);
        yield return ("broadcast", broadcast);
    }

    /// <summary>Sender and firewall namespaces joined by snd0 (PacketBuilder's source MAC) and fw0 (its destination MAC).</summary>
    sealed class Link : IDisposable
    {
        public NetNs Sender { get; }
        public NetNs Fw { get; } = null!;
        (BpfProgram Program, BpfLink Link)? _pass;

        public Link()
        {
            // made in the constructor's try, not as initializers: a throwing constructor is never disposed
            Sender = new();
            try
            {
                Fw = new();
                Sender.AddVeth("snd0", Fw, "fw0", "02:00:00:00:00:01", "02:00:00:00:00:02");
                // no IPv6 of their own (router solicitations, MLD): the only IPv6 frames are the tests' and the replies
                Sysctl(Sender, "net.ipv6.conf.snd0.disable_ipv6=1");
                Sysctl(Fw, "net.ipv6.conf.fw0.disable_ipv6=1");
                Sender.Ip("link", "set", "snd0", "up");
                Fw.Ip("link", "set", "fw0", "up");
                Sender.WaitUntilUp("snd0");
                Fw.WaitUntilUp("fw0");
                // r0 = XDP_PASS; exit
                _pass = Sender.Run(() =>
                {
                    var p = BpfProgram.Load(BpfProgType.Xdp, "xdp_pass", [0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0], BpfAttachType.Xdp);
                    return (p, BpfLink.AttachXdp(p, BpfLink.IfIndex("snd0")));
                });
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>Sends each frame from snd0 and returns, per frame, the IP frames that came back within the wait.</summary>
        public List<List<byte[]>> Exchange(IEnumerable<byte[]> frames) => Sender.Run(() =>
        {
            var fd = LinuxSockets.Socket(LinuxSockets.AF_PACKET, LinuxSockets.SOCK_RAW, 0x0300); // htons(ETH_P_ALL)
            try
            {
                var ifIndex = LinuxSockets.IfIndex("snd0");
                LinuxSockets.SetInt(fd, LinuxSockets.SOL_PACKET, LinuxSockets.PACKET_IGNORE_OUTGOING, 1);
                LinuxSockets.BindLink(fd, ifIndex);
                var buffer = new byte[65536];
                var all = new List<List<byte[]>>();
                foreach (var frame in frames)
                {
                    while (LinuxSockets.TryReceive(fd, buffer) != null) { }
                    LinuxSockets.SendLink(fd, ifIndex, frame);
                    var got = new List<byte[]>();
                    var end = DateTime.UtcNow.AddMilliseconds(400);
                    while (DateTime.UtcNow < end)
                    {
                        if (!LinuxSockets.WaitReadable([fd], 50)) continue;
                        while (LinuxSockets.TryReceive(fd, buffer) is { } f)
                            if (f.Length > 14 && (f[12], f[13]) is (0x08, 0x00) or (0x86, 0xdd)) got.Add(f);
                    }
                    all.Add(got);
                }
                return all;
            }
            finally
            {
                LinuxSockets.Close(fd);
            }
        });

        public void Dispose()
        {
            _pass?.Link.Dispose();
            _pass?.Program.Dispose();
            Sender.Dispose();
            Fw?.Dispose();
        }
    }

    static void Sysctl(NetNs ns, string setting)
    {
        var r = ns.Exec("sysctl", ["-qw", setting]);
        Assert.True(r.Exit == 0, r.ToString());
    }

    /// <summary>The IPv4 TCP checksum (a reset from the kernel carries the partial one of CHECKSUM_PARTIAL) zeroed.</summary>
    static string Comparable(byte[] f)
    {
        var c = f.ToArray();
        if (c.Length >= 54 && c[12] == 0x08 && c[13] == 0x00 && c[23] == 6) c[50] = c[51] = 0;
        return Convert.ToHexString(c);
    }

    static List<List<byte[]>> Run(bool daemon, string rules, Action<Link>? setup = null, IEnumerable<byte[]>? frames = null, bool inXdp = false)
    {
        using var link = new Link();
        setup?.Invoke(link);
        using var bpfilterd = daemon ? DaemonProcess.Start(link.Fw, enforce: true) : null;
        var load = daemon
            ? link.Fw.Exec(RepoPaths.RequireBfnft(), ["-f", "-"], rules, env: bpfilterd!.Env)
            : link.Fw.Exec("nft", ["-f", "-"], rules);
        Assert.True(load.Exit == 0, $"{load}\n{bpfilterd?.Log}");
        if (daemon && (frames == null || inXdp))
            Assert.Contains("xdp", link.Fw.Ip("link", "show", "fw0")); // the chain runs in BPF
        return link.Exchange(frames ?? Cases().Select(c => c.Frame));
    }

    [Fact]
    public void RepliesAreTheKernelsByteForByte()
    {
        RepoPaths.RequireBfnft();
        var kernel = Run(daemon: false, Rules);
        var bpf = Run(daemon: true, Rules);
        var names = Cases().Select(c => c.Name).ToList();
        var answered = 0;
        for (var i = 0; i < names.Count; i++)
        {
            Assert.True(kernel[i].Count <= 1, $"{names[i]}: the kernel answered {kernel[i].Count} times");
            Assert.Equal(kernel[i].Select(Comparable).ToList(), bpf[i].Select(Comparable).ToList());
            answered += kernel[i].Count;
        }
        // both sides answered most of them, and stayed silent on the rest, as the kernel does
        Assert.Equal(9, answered);
    }

    [Fact]
    public void RejectInAnInetInputChainStillAnswersFromTheKernel()
    {
        RepoPaths.RequireBfnft();
        const string rules = """
            table inet f {
              chain in { type filter hook input priority 0; policy accept; tcp dport 22 reject with tcp reset; }
            }
            """;
        void Address(Link l)
        {
            l.Fw.Ip("addr", "add", $"{D}/24", "dev", "fw0");
            l.Fw.Ip("neigh", "replace", S, "lladdr", "02:00:00:00:00:01", "dev", "fw0");
        }
        byte[] syn = PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22, seq: 1000, flags: 0x02).Payload(10);
        var kernel = Run(daemon: false, rules, Address, [syn]);
        var bpf = Run(daemon: true, rules, Address, [syn]);
        Assert.Single(kernel[0]);
        Assert.Equal(kernel[0].Select(Comparable).ToList(), bpf[0].Select(Comparable).ToList());
    }

    [Fact]
    public void BpfOnlyRefusesRejectItCannotRunNamingTheRule()
    {
        RepoPaths.RequireBfnft();
        using var link = new Link();
        using var bpfilterd = DaemonProcess.Start(link.Fw, enforce: true, arguments: ["--placement", "bpf-only"]);
        // at a netfilter hook the kernel routes its reply: only netdev ingress answers in BPF
        var r = link.Fw.Exec(RepoPaths.RequireBfnft(), ["-f", "-"], """
            table inet f {
              chain in {
                type filter hook input priority 0;
                tcp dport 22 reject with tcp reset
              }
            }
            """, env: bpfilterd.Env);
        Assert.NotEqual(0, r.Exit);
        // nft underlines the statement the daemon names in its answer
        Assert.Contains("Operation not supported", r.Stderr);
        Assert.Contains("tcp dport 22 reject with tcp reset", r.Stderr);
        Assert.Contains("^^^^^^", r.Stderr);
        Assert.Contains("expression 'reject' is not supported by bpfilter-nft in inet tables", bpfilterd.Log);
    }

    /// <summary>
    /// Family-independent rules (nft adds `meta protocol ip6` only to `reject with icmpv6`) answer each
    /// frame by its EtherType; the hop limit is the namespace's net.ipv6.conf.all.hop_limit (33 here,
    /// with 44 on fw0 and 55 as default: the kernel reads `all`).
    /// </summary>
    const string Rules6 = """
        table netdev t {
          chain c {
            type filter hook ingress device fw0 priority 0; policy accept;
            meta l4proto tcp reject with tcp reset
            udp dport 53 reject
            udp dport 54 reject with icmpx admin-prohibited
            udp dport 55 reject with icmpv6 addr-unreachable
            ip6 daddr 2001:db8::98 reject
            ip6 daddr 2001:db8::99 reject with tcp reset
          }
        }
        """;

    const string S6 = "2001:db8::1", D6 = "2001:db8::2", Any = "2001:db8::98", Rst = "2001:db8::99";

    static byte[] Trailing(byte[] frame) => [.. frame, 0xde, 0xad, 0xbe, 0xef];

    public static IEnumerable<(string Name, byte[] Frame)> Cases6()
    {
        yield return ("syn with data", PacketBuilder.Ether().Ipv6(S6, D6).Tcp(40000, 22, seq: 1000).Payload(10));
        yield return ("acked segment", PacketBuilder.Ether().Ipv6(S6, D6).Tcp(40000, 22, flags: 0x18, seq: 5, ack: 0xfffffff0).Payload(100));
        yield return ("rst", PacketBuilder.Ether().Ipv6(S6, D6).Tcp(40000, 22, flags: 0x04).Payload(10));
        yield return ("tagged syn", PacketBuilder.Ether(vlanId: 20).Ipv6(S6, D6).Tcp(40000, 22, seq: 3).Payload(10));
        yield return ("syn behind hop-by-hop, routing, destination options", PacketBuilder.Ether().Ipv6(S6, D6, (0, 8), (43, 24), (60, 16)).Tcp(40000, 22, seq: 3).Payload(10));
        yield return ("syn in an atomic first fragment", PacketBuilder.Ether().Ipv6(S6, Rst, (44, 0)).Tcp(40000, 22, seq: 3).Payload(10));
        yield return ("udp in a non-first fragment", PacketBuilder.Ether().Ipv6(S6, Any, (44, 2)).Udp(5353, 53).Payload(10));
        yield return ("tcp in a non-first fragment", PacketBuilder.Ether().Ipv6(S6, Rst, (44, 2)).Tcp(40000, 22).Payload(10));
        yield return ("syn with 4 trailing bytes", Trailing(PacketBuilder.Ether().Ipv6(S6, D6).Tcp(40000, 22, seq: 3).Payload(10)));
        yield return ("udp to a closed port", PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 53, payload: 31));
        yield return ("udp, icmpx admin-prohibited", PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 54, payload: 31));
        yield return ("udp, icmpv6 addr-unreachable", PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 55, payload: 31));
        yield return ("big udp", PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 53, payload: 1400));
        byte[] noChecksum = PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 53, payload: 20);
        noChecksum[60] = noChecksum[61] = 0;
        yield return ("udp without checksum", noChecksum);
        byte[] badUdp = PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 53, payload: 20);
        badUdp[^1] ^= 1;
        yield return ("udp with a bad checksum", badUdp);
        yield return ("udp with 4 trailing bytes", Trailing(PacketBuilder.Ether().Ipv6(S6, D6).Udp(5353, 53, payload: 20)));
        yield return ("icmpv6 echo", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(128, proto: 58).Payload(20));
        yield return ("icmpv6 unreachable", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(1, 4, proto: 58).Payload(48));
        yield return ("icmpv6 packet too big", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(2, 0, proto: 58).Payload(48));
        yield return ("icmpv6 time exceeded", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(3, 0, proto: 58).Payload(48));
        yield return ("icmpv6 redirect", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(137, 0, proto: 58).Payload(32));
        // an ICMP-style sum without the pseudo-header: nf_ip6_checksum adds it for every protocol
        yield return ("protocol 253", PacketBuilder.Ether().Ipv6(S6, Any).Icmp(8, proto: 253).Payload(20));
        yield return ("no next header", PacketBuilder.Ether().Ipv6(S6, Any, (0, 8)).Payload(20));
        byte[] multicastMac = PacketBuilder.Ether().Ipv6(S6, "ff02::1").Tcp(40000, 22).Payload(10);
        multicastMac[0] = 0x33; multicastMac[1] = 0x33; multicastMac[2] = 0; multicastMac[3] = 0; multicastMac[4] = 0; multicastMac[5] = 1;
        yield return ("multicast destination MAC", multicastMac);
        yield return ("multicast address, unicast MAC", PacketBuilder.Ether().Ipv6(S6, "ff02::1").Tcp(40000, 22, seq: 9).Payload(10));
        byte[] longer = PacketBuilder.Ether().Ipv6(S6, D6).Tcp(40000, 22).Payload(10);
        longer[19]++;
        yield return ("payload_len past the frame", longer);
        yield return ("ipv4 syn", PacketBuilder.Ether().Ipv4(S, D).Tcp(40000, 22, seq: 1000).Payload(10));
        yield return ("ipv4 udp", PacketBuilder.Ether().Ipv4(S, D).Udp(5353, 53, payload: 31));
    }

    static void HopLimits(Link l)
    {
        Sysctl(l.Fw, "net.ipv6.conf.all.hop_limit=33");
        Sysctl(l.Fw, "net.ipv6.conf.default.hop_limit=55");
        Sysctl(l.Fw, "net.ipv6.conf.fw0.hop_limit=44");
    }

    [Fact]
    public void Ipv6RepliesAreTheKernelsByteForByte()
    {
        RepoPaths.RequireBfnft();
        var frames = Cases6().Select(c => c.Frame).ToList();
        var kernel = Run(daemon: false, Rules6, HopLimits, frames);
        var bpf = Run(daemon: true, Rules6, HopLimits, frames, inXdp: true);
        var names = Cases6().Select(c => c.Name).ToList();
        var answered = 0;
        for (var i = 0; i < names.Count; i++)
        {
            Assert.True(kernel[i].Count <= 1, $"{names[i]}: the kernel answered {kernel[i].Count} times");
            Assert.True(kernel[i].Select(Comparable).SequenceEqual(bpf[i].Select(Comparable)),
                $"{names[i]}: kernel [{string.Join(", ", kernel[i].Select(Comparable))}] bpf [{string.Join(", ", bpf[i].Select(Comparable))}]");
            answered += kernel[i].Count;
        }
        // where the kernel stays silent, measured on 6.18
        string[] silent = ["rst", "udp in a non-first fragment", "tcp in a non-first fragment", "syn with 4 trailing bytes",
            "udp with a bad checksum", "icmpv6 unreachable", "protocol 253", "no next header", "multicast destination MAC",
            "payload_len past the frame"];
        Assert.Equal(silent, names.Where((_, i) => kernel[i].Count == 0));
        Assert.Equal(names.Count - silent.Length, answered);
        Assert.Equal(33, kernel[0][0][21]); // hop limit: conf.all's, not fw0's 44 or default's 55
    }
}
