using System.Net;
using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>
/// peer — fw — back: three namespaces joined by two veth pairs, the firewall under test in fw.
///
///   peer: pe0 02:00:00:00:01:02 ── fw0 02:00:00:00:01:01 198.18.1.1/24 2001:db8:1::1/64 (fw)
///   back: bk0 02:00:00:00:02:02 ── fw1 02:00:00:00:02:01 198.18.2.1/24 2001:db8:2::1/64 (fw)
///
/// peer and back have no IP stack of their own (no addresses, IPv6 disabled): they only put crafted
/// frames on the wire and watch what arrives (AF_PACKET), so they never answer or chatter. fw
/// forwards, has permanent neighbour entries for 198.18.1.2/2001:db8:1::2 (peer) and
/// 198.18.2.2/2001:db8:2::2 (back), no ARP/ND/DAD traffic, and no route to the client prefixes
/// 198.19.0.0/16 and 2001:db8:ff::/48 that crafted packets come from: its stack cannot answer them
/// (no RST, no ICMP errors, no echo replies), so the only packets that cross a hook are the test's.
/// Device names and addresses are the same in every topology, so one ruleset fits all of them.
///
/// The bridge variant (<see cref="TopologyKind.Bridge"/>) puts fw0 and fw1 into a bridge br0 that
/// holds fw's four addresses and fw0's MAC: peer and back are then on one Ethernet segment, and
/// frames between them cross the bridge hooks. A case can also give fw routes and policy rules for
/// its duration (<see cref="Prepare"/>), e.g. to forward the answers of a flow back to a client.
/// </summary>
public sealed class Topology : IDisposable
{
    public static readonly byte[] PeerMac = [2, 0, 0, 0, 1, 2], Fw0Mac = [2, 0, 0, 0, 1, 1];
    public static readonly byte[] BackMac = [2, 0, 0, 0, 2, 2], Fw1Mac = [2, 0, 0, 0, 2, 1];
    static readonly IPAddress[] FwAddresses =
        [IPAddress.Parse("198.18.1.1"), IPAddress.Parse("198.18.2.1"), IPAddress.Parse("2001:db8:1::1"), IPAddress.Parse("2001:db8:2::1")];

    public NetNs Peer { get; }
    public NetNs Fw { get; }
    public NetNs Back { get; }
    public TopologyKind Kind { get; }

    /// <summary>The device fw's addresses, neighbours and routes live on for each link.</summary>
    string FwDevice(Origin link) => Kind == TopologyKind.Bridge ? "br0" : link == Origin.Peer ? "fw0" : "fw1";

    readonly List<int> _fds = [];
    int _peerSocket, _backSocket, _peerIf, _backIf, _fwRaw4, _fwRaw6;
    int[] _local = [];
    readonly byte[] _buffer = new byte[65536];
    bool _disposed;

    /// <summary>Frames or datagrams seen at an observation point that belonged to no packet sent then.</summary>
    public int StrayCount => _stray.Count;

    /// <summary>The first stray items, as hex, for failure reports.</summary>
    public IReadOnlyList<string> StraySamples => _stray.Take(5).ToList();
    readonly List<string> _stray = [];

    void Stray(string where, byte[] bytes) => _stray.Add($"{where}: {Convert.ToHexString(bytes.AsSpan(0, Math.Min(bytes.Length, 96)))}");

    Topology(NetNs peer, NetNs fw, NetNs back, TopologyKind kind) { Peer = peer; Fw = fw; Back = back; Kind = kind; }

    public static Topology Create(TopologyKind kind = TopologyKind.Routed)
    {
        var made = new List<NetNs>();
        try
        {
            for (int i = 0; i < 3; i++) made.Add(NetNs.Create(withDevices: false));
            var t = new Topology(made[0], made[1], made[2], kind);
            try
            {
                t.Configure();
                t.OpenSockets();
                t.WaitQuiet();
            }
            catch
            {
                t.CloseSockets();
                throw;
            }
            return t;
        }
        catch
        {
            foreach (var ns in made) ns.Dispose();
            throw;
        }
    }

    static void Ip(params string[] args) => ProcessRunner.Check("ip", args);

    static void Sysctl(NetNs ns, params string[] settings)
    {
        var r = ns.Exec("sysctl", ["-q", "-w", .. settings]);
        if (r.Exit != 0) throw new InvalidOperationException($"sysctl in {ns.Name}: {r}");
    }

    void Configure()
    {
        string p = Peer.Name, f = Fw.Name, b = Back.Name;
        foreach (var ns in new[] { Peer, Back })
            Sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
        Sysctl(Fw, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
            "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0",
            "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
            "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0",
            // fw's stack reports its multicast groups (MLD) when links come up; the reports are
            // repeated within this interval, so they are all out before WaitQuiet ends.
            "net.ipv6.conf.all.mldv2_unsolicited_report_interval=10", "net.ipv6.conf.default.mldv2_unsolicited_report_interval=10",
            "net.ipv6.conf.all.mldv1_unsolicited_report_interval=10", "net.ipv6.conf.default.mldv1_unsolicited_report_interval=10",
            "net.ipv6.conf.default.addr_gen_mode=1");
        Peer.AddVeth("pe0", Fw, "fw0", Mac(PeerMac), Mac(Fw0Mac));
        Back.AddVeth("bk0", Fw, "fw1", Mac(BackMac), Mac(Fw1Mac));
        Sysctl(Peer, "net.ipv6.conf.pe0.disable_ipv6=1");
        Sysctl(Back, "net.ipv6.conf.bk0.disable_ipv6=1");
        foreach (var dev in new[] { "fw0", "fw1" })
            Sysctl(Fw, $"net.ipv4.conf.{dev}.rp_filter=0", $"net.ipv6.conf.{dev}.accept_dad=0", $"net.ipv6.conf.{dev}.accept_ra=0",
                $"net.ipv6.conf.{dev}.addr_gen_mode=1", $"net.ipv6.conf.{dev}.mldv2_unsolicited_report_interval=10",
                $"net.ipv6.conf.{dev}.mldv1_unsolicited_report_interval=10");
        if (Kind == TopologyKind.Bridge)
        {
            // No STP (ports forward at once), static FDB entries (no flooding to learn), bridged
            // IP not passed to the ip/ip6/arp hooks (br_netfilter): only the bridge family sees it.
            Sysctl(Fw, "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0", "net.bridge.bridge-nf-call-arptables=0");
            Ip("-n", f, "link", "add", "br0", "address", Mac(Fw0Mac), "type", "bridge", "stp_state", "0",
                "mcast_snooping", "0", "nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0");
            Sysctl(Fw, "net.ipv4.conf.br0.rp_filter=0", "net.ipv6.conf.br0.accept_dad=0", "net.ipv6.conf.br0.accept_ra=0",
                "net.ipv6.conf.br0.addr_gen_mode=1", "net.ipv6.conf.br0.mldv2_unsolicited_report_interval=10",
                "net.ipv6.conf.br0.mldv1_unsolicited_report_interval=10");
            foreach (var dev in new[] { "fw0", "fw1" })
            {
                Sysctl(Fw, $"net.ipv6.conf.{dev}.disable_ipv6=1");
                Ip("-n", f, "link", "set", dev, "master", "br0");
            }
        }
        Ip("-n", f, "addr", "add", "198.18.1.1/24", "dev", FwDevice(Origin.Peer));
        Ip("-n", f, "addr", "add", "198.18.2.1/24", "dev", FwDevice(Origin.Back));
        Ip("-n", f, "addr", "add", "2001:db8:1::1/64", "dev", FwDevice(Origin.Peer), "nodad");
        Ip("-n", f, "addr", "add", "2001:db8:2::1/64", "dev", FwDevice(Origin.Back), "nodad");
        Ip("-n", f, "link", "set", "lo", "up");
        Ip("-n", p, "link", "set", "pe0", "up");
        Ip("-n", b, "link", "set", "bk0", "up");
        Ip("-n", f, "link", "set", "fw0", "up");
        Ip("-n", f, "link", "set", "fw1", "up");
        if (Kind == TopologyKind.Bridge)
        {
            Ip("-n", f, "link", "set", "br0", "up");
            ProcessRunner.Check("bridge", "-n", f, "fdb", "replace", Mac(PeerMac), "dev", "fw0", "master", "static");
            ProcessRunner.Check("bridge", "-n", f, "fdb", "replace", Mac(BackMac), "dev", "fw1", "master", "static");
        }
        Ip("-n", f, "neigh", "add", "198.18.1.2", "lladdr", Mac(PeerMac), "dev", FwDevice(Origin.Peer), "nud", "permanent");
        Ip("-n", f, "neigh", "add", "2001:db8:1::2", "lladdr", Mac(PeerMac), "dev", FwDevice(Origin.Peer), "nud", "permanent");
        Ip("-n", f, "neigh", "add", "198.18.2.2", "lladdr", Mac(BackMac), "dev", FwDevice(Origin.Back), "nud", "permanent");
        Ip("-n", f, "neigh", "add", "2001:db8:2::2", "lladdr", Mac(BackMac), "dev", FwDevice(Origin.Back), "nud", "permanent");
    }

    /// <summary>
    /// Readies fw for one case: no connection tracking entry left from before, and the case's routes
    /// and policy rules in place. <see cref="Restore"/> removes them again.
    /// </summary>
    public void Prepare(PacketCase c)
    {
        if (c.Topology != Kind) throw new ArgumentException($"{c.Name} needs the {c.Topology} topology, this one is {Kind}");
        Conntrack.Flush(Fw);
        foreach (var r in c.Routes) Ip(["-n", Fw.Name, .. RouteArgs("add", r)]);
        foreach (var r in c.Rules) Ip(RuleArgs("add", r, v6: false));
        foreach (var r in c.Rules) Ip(RuleArgs("add", r, v6: true));
    }

    /// <summary>Removes what <see cref="Prepare"/> added; reports (does not throw) what could not be removed.</summary>
    public string Restore(PacketCase c)
    {
        var failed = new List<string>();
        void Undo(string[] args)
        {
            var r = ProcessRunner.Run("ip", args);
            if (r.Exit != 0) failed.Add($"ip {string.Join(' ', args)}: {r.Stderr.Trim()}");
        }
        foreach (var r in c.Rules) Undo(RuleArgs("del", r, v6: false));
        foreach (var r in c.Rules) Undo(RuleArgs("del", r, v6: true));
        foreach (var r in c.Routes) Undo(["-n", Fw.Name, .. RouteArgs("del", r)]);
        return failed.Count == 0 ? "" : "could not undo the case's routing: " + string.Join("; ", failed);
    }

    string[] RouteArgs(string verb, CaseRoute r)
    {
        var via = r.Via == Origin.Peer ? (r.IsV4 ? PeerV4 : PeerV6) : (r.IsV4 ? BackV4 : BackV6);
        var args = new List<string> { r.IsV4 ? "-4" : "-6", "route", verb, r.Prefix, "via", via.ToString(), "dev", FwDevice(r.Via) };
        if (r.Table is { } t) args.AddRange(["table", t.ToString()]);
        return args.ToArray();
    }

    string[] RuleArgs(string verb, CaseRule r, bool v6) =>
        ["-n", Fw.Name, v6 ? "-6" : "-4", "rule", verb, "fwmark", $"0x{r.Mark:x}", "table", r.Table.ToString()];

    static string Mac(byte[] m) => string.Join(':', m.Select(x => x.ToString("x2")));

    int Track(int fd)
    {
        _fds.Add(fd);
        return fd;
    }

    void OpenSockets()
    {
        (int, int) LinkSocket(NetNs ns, string dev) => ns.Run(() =>
        {
            var fd = Track(LinuxSockets.Socket(LinuxSockets.AF_PACKET, LinuxSockets.SOCK_RAW, 0x0300)); // htons(ETH_P_ALL)
            var index = LinuxSockets.IfIndex(dev);
            LinuxSockets.SetInt(fd, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_RCVBUF, 1 << 22);
            LinuxSockets.SetInt(fd, LinuxSockets.SOL_PACKET, LinuxSockets.PACKET_IGNORE_OUTGOING, 1);
            LinuxSockets.BindLink(fd, index);
            return (fd, index);
        });
        (_peerSocket, _peerIf) = LinkSocket(Peer, "pe0");
        (_backSocket, _backIf) = LinkSocket(Back, "bk0");
        Fw.Run(() =>
        {
            _fwRaw4 = Track(LinuxSockets.Socket(LinuxSockets.AF_INET, LinuxSockets.SOCK_RAW, LinuxSockets.IPPROTO_RAW));
            _fwRaw6 = Track(LinuxSockets.Socket(LinuxSockets.AF_INET6, LinuxSockets.SOCK_RAW, LinuxSockets.IPPROTO_RAW));
            LinuxSockets.SetInt(_fwRaw6, LinuxSockets.IPPROTO_IPV6, LinuxSockets.IPV6_HDRINCL, 1);
            // Raw IP sockets get a copy of every datagram delivered locally, after the input hook.
            var local = new List<int>();
            foreach (var proto in new[] { LinuxSockets.IPPROTO_ICMP, LinuxSockets.IPPROTO_TCP, LinuxSockets.IPPROTO_UDP })
                local.Add(Track(LinuxSockets.Socket(LinuxSockets.AF_INET, LinuxSockets.SOCK_RAW, proto)));
            foreach (var proto in new[] { LinuxSockets.IPPROTO_ICMPV6, LinuxSockets.IPPROTO_TCP, LinuxSockets.IPPROTO_UDP })
                local.Add(Track(LinuxSockets.Socket(LinuxSockets.AF_INET6, LinuxSockets.SOCK_RAW, proto)));
            foreach (var fd in local) LinuxSockets.SetInt(fd, LinuxSockets.SOL_SOCKET, LinuxSockets.SO_RCVBUF, 1 << 22);
            _local = local.ToArray();
            return 0;
        });
    }

    /// <summary>
    /// Where a packet to this destination shows up if fw lets it through. Other hosts on fw's two
    /// links would make fw resolve neighbours (ARP/ND traffic through the hooks), so they are refused.
    /// </summary>
    public static Observation ObservationFor(IPAddress destination) => ObservationFor(destination, []);

    /// <summary>
    /// As above, with the case's routes of the main table: a destination in one of their prefixes
    /// (the longest that matches) is delivered on that route's link.
    /// </summary>
    public static Observation ObservationFor(IPAddress destination, IReadOnlyList<CaseRoute> routes)
    {
        if (FwAddresses.Contains(destination)) return Observation.Local;
        if (destination.Equals(PeerV4) || destination.Equals(PeerV6)) return Observation.Peer;
        if (destination.Equals(BackV4) || destination.Equals(BackV6)) return Observation.Back;
        var route = routes.Where(r => r.Table == null && r.Contains(destination)).MaxBy(r => r.PrefixLength);
        if (route != null) return route.Via == Origin.Peer ? Observation.Peer : Observation.Back;
        var b = destination.GetAddressBytes();
        bool onLink = b.Length == 4
            ? b[0] == 198 && b[1] == 18 && b[2] is 1 or 2
            : b.AsSpan(0, 8).SequenceEqual(PeerV6.GetAddressBytes().AsSpan(0, 8)) || b.AsSpan(0, 8).SequenceEqual(BackV6.GetAddressBytes().AsSpan(0, 8));
        if (onLink)
            throw new FormatException($"{destination} is on fw's links but is neither fw, peer nor back: fw would have to resolve it");
        return Observation.Nowhere;
    }

    public static readonly IPAddress PeerV4 = IPAddress.Parse("198.18.1.2"), PeerV6 = IPAddress.Parse("2001:db8:1::2");
    public static readonly IPAddress BackV4 = IPAddress.Parse("198.18.2.2"), BackV6 = IPAddress.Parse("2001:db8:2::2");

    public static bool IsFwAddress(IPAddress a) => FwAddresses.Contains(a);

    /// <summary>
    /// Sends the packet's frames and reports whether it arrived where it was going: for fw's own
    /// addresses, whole (reassembled) in a raw socket after the input hook; for peer or back, every
    /// frame on that link. Waits at most <paramref name="waitMs"/> for a packet that does not come.
    /// </summary>
    public bool SendAndObserve(CraftedPacket packet, int waitMs)
    {
        var where = packet.Where;
        Drain();
        int refused = 0;
        foreach (var frame in packet.Frames)
            switch (packet.Spec.From)
            {
                case Origin.Peer: LinuxSockets.SendLink(_peerSocket, _peerIf, frame); break;
                case Origin.Back: LinuxSockets.SendLink(_backSocket, _backIf, frame); break;
                default:
                    var fd = packet.Destination.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? _fwRaw4 : _fwRaw6;
                    if (LinuxSockets.SendIp(fd, frame, packet.Destination) == LinuxSockets.EPERM) refused++;
                    break;
            }
        // Every frame dropped on fw's output path: nothing can arrive, no need to wait.
        if (refused == packet.Frames.Count) return false;

        var fds = where switch
        {
            Observation.Local => _local,
            Observation.Peer => [_peerSocket],
            Observation.Back => [_backSocket],
            _ => [_peerSocket, _backSocket, .. _local],
        };
        var missing = packet.ArrivalKeys.ToList();
        var deadline = Environment.TickCount64 + waitMs;
        while (true)
        {
            foreach (var fd in fds)
                for (byte[]? got; (got = LinuxSockets.TryReceive(fd, _buffer)) != null;)
                {
                    bool ours = where switch
                    {
                        Observation.Local => got.AsSpan().IndexOf(packet.Marker) >= 0,
                        Observation.Peer or Observation.Back => PacketCrafter.FrameKey(got) is { } key && missing.Remove(key),
                        _ => false,
                    };
                    if (!ours) Stray(where.ToString(), got);
                    else if (where == Observation.Local) missing.Clear();
                }
            if (missing.Count == 0 && where != Observation.Nowhere) return true;
            var left = deadline - Environment.TickCount64;
            if (left <= 0) return false;
            LinuxSockets.WaitReadable(fds, (int)left);
        }
    }

    /// <summary>
    /// Waits until the links have been silent for a while (fw's MLD reports after link-up), so that
    /// no frame but the test's crosses a hook later. Throws if the topology never calms down.
    /// </summary>
    void WaitQuiet()
    {
        var limit = Environment.TickCount64 + 15_000;
        // The carrier comes up through linkwatch, up to a second later; MLD reports follow it.
        Peer.WaitUntilUp("pe0");
        Fw.WaitUntilUp("fw0", "fw1");
        Back.WaitUntilUp("bk0");
        int[] fds = [_peerSocket, _backSocket];
        var quietSince = Environment.TickCount64;
        while (Environment.TickCount64 - quietSince < 1000)
        {
            if (Environment.TickCount64 > limit)
                throw new InvalidOperationException($"the topology never went quiet; last frames:\n{string.Join('\n', _stray.TakeLast(5))}");
            if (LinuxSockets.WaitReadable(fds, 100))
            {
                Drain();
                quietSince = Environment.TickCount64;
            }
        }
        _stray.Clear();
    }

    /// <summary>Discards whatever is queued, counting it as stray: nothing should be.</summary>
    public void Drain()
    {
        foreach (var fd in _local.Append(_peerSocket).Append(_backSocket))
            for (byte[]? got; (got = LinuxSockets.TryReceive(fd, _buffer)) != null;)
                Stray(fd == _peerSocket ? "peer" : fd == _backSocket ? "back" : "local", got);
    }

    public void ResetStray() => _stray.Clear();

    void CloseSockets()
    {
        foreach (var fd in _fds) LinuxSockets.Close(fd);
        _fds.Clear();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        CloseSockets();
        Peer.Dispose();
        Fw.Dispose();
        Back.Dispose();
    }
}

public enum Observation { Local, Peer, Back, Nowhere }
