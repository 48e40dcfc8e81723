using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Integration.Tests.Harness;
using Bpfilter.Integration.Tests.Packets;

namespace Bpfilter.Integration.Tests.Monitor;

/// <summary>
/// `nft monitor trace` against the kernel and `bfnft monitor trace` against an enforcing bpfilterd, each
/// in a fresh namespace with the same ruleset, watch the same crafted packets arrive over a veth pair from
/// another namespace; what they print must be identical once the trace ids (random per packet) are
/// numbered in order of appearance. Everything else the kernel prints is fixed by the crafted bytes
/// (MACs set on the veth pair, ip id, ports, window), which <see cref="KernelTracesTwiceAlike"/> checks.
/// </summary>
public partial class TraceTests
{
    const string Ruleset = """
        table inet t {
            chain pre {
                type filter hook prerouting priority 0; policy accept;
                ip saddr 192.0.2.1 meta nftrace set 1
            }
            chain sub {
                tcp dport 23 counter drop
                counter return
            }
            chain in {
                type filter hook input priority 0; policy drop;
                iifname "lo" accept
                icmp type echo-request counter accept
                tcp dport { 22, 23 } jump sub
                tcp dport 80 counter accept
                udp dport 53 meta mark set 7 continue
                meta mark 7 accept
            }
        }
        table ip other {
            chain in {
                type filter hook input priority 10; policy accept;
                meta mark 7 counter drop
            }
        }
        """;

    const string Client = "192.0.2.1", Fw = "192.0.2.2", Untraced = "192.0.2.9";
    const string ClientDevice = "trc0", FwDevice = "trf0";

    /// <summary>The packets, sent one after the other; the untraced one must leave no line.</summary>
    static IEnumerable<byte[]> Packets() =>
    [
        PacketBuilder.Ether().Ipv4(Client, Fw, id: 1).Tcp(40001, 22), // jump sub, return, policy drop
        PacketBuilder.Ether().Ipv4(Client, Fw, id: 2).Tcp(40002, 23), // jump sub, drop there
        PacketBuilder.Ether().Ipv4(Untraced, Fw, id: 3).Tcp(40003, 80), // not traced
        PacketBuilder.Ether().Ipv4(Client, Fw, id: 4).Tcp(40004, 80, window: 1024), // counter accept
        PacketBuilder.Ether().Ipv4(Client, Fw, id: 5).Udp(40005, 53), // mark, continue, accept; dropped by table ip other
        PacketBuilder.Ether().Ipv4(Client, Fw, id: 6).Icmp(8), // echo-request accepted
    ];

    /// <summary>Lines (or parts) the kernel's trace must hold: every path of the ruleset was taken.</summary>
    static readonly string[] Expected =
    [
        "inet t in rule tcp dport { 22, 23 } jump sub (verdict jump sub)",
        "inet t sub rule counter packets 0 bytes 0 return (verdict return)",
        "inet t sub rule tcp dport 23 counter packets 0 bytes 0 drop (verdict drop)",
        "inet t in policy drop",
        "inet t in rule udp dport 53 meta mark set 0x00000007 continue (verdict continue)",
        "ip other in rule meta mark 0x00000007 counter packets 0 bytes 0 drop (verdict drop)",
        "icmp type echo-request",
    ];

    static readonly string[][] Variants = [["monitor", "trace"], ["-j", "monitor", "trace"]];

    [Fact]
    public void TraceOfBfnftIsTheKernels()
    {
        var missing = RepoPaths.MissingReason();
        Assert.True(missing.Length == 0, missing);
        var kernel = Run(daemon: false);
        var daemon = Run(daemon: true);
        for (int i = 0; i < Variants.Length; i++)
            Assert.True(kernel[i] == daemon[i],
                $"nft {string.Join(' ', Variants[i])}:\n{UnifiedDiff.Create(kernel[i], daemon[i], "kernel", "bpfilterd")}");
        // the ruleset's paths are traced at all (identical empty outputs would pass too)
        var text = kernel[0];
        foreach (var line in Expected)
            Assert.True(text.Contains(line, StringComparison.Ordinal), $"missing `{line}` in:\n{text}\n{kernel[1]}");
        Assert.DoesNotContain(Untraced, text);
        Assert.Equal(5, TraceIds(text).Distinct().Count());
    }

    /// <summary>The kernel against itself: nothing but the trace ids differs between two runs.</summary>
    [Fact]
    public void KernelTracesTwiceAlike()
    {
        var first = Run(daemon: false);
        var second = Run(daemon: false);
        Assert.Equal(first, second);
    }

    /// <summary>Sets up a fresh pair of namespaces, loads the ruleset, runs every monitor variant while the packets arrive.</summary>
    static List<string> Run(bool daemon)
    {
        using var client = new NetNs();
        using var fw = new NetNs();
        client.AddVeth(ClientDevice, fw, FwDevice, Mac(PacketBuilder.SrcMac), Mac(PacketBuilder.DstMac));
        client.Ip("addr", "add", Client + "/24", "dev", ClientDevice);
        fw.Ip("addr", "add", Fw + "/24", "dev", FwDevice);
        client.Ip("link", "set", ClientDevice, "up");
        fw.Ip("link", "set", FwDevice, "up");
        fw.Ip("link", "set", "lo", "up");
        client.WaitUntilUp(ClientDevice);
        fw.WaitUntilUp(FwDevice);
        // replies need no neighbour discovery, which would send more packets through the chains
        fw.Ip("neigh", "replace", Client, "lladdr", Mac(PacketBuilder.SrcMac), "dev", FwDevice, "nud", "permanent");
        fw.Ip("neigh", "replace", Untraced, "lladdr", Mac(PacketBuilder.SrcMac), "dev", FwDevice, "nud", "permanent");
        using var bpfilterd = daemon ? DaemonProcess.Start(fw, enforce: true) : null;
        var env = bpfilterd?.Env;
        var nft = daemon ? RepoPaths.RequireBfnft() : "nft";
        var load = fw.Exec(nft, ["-f", "-"], Ruleset, env: env);
        Assert.True(load.Exit == 0, $"loading the ruleset: {load}\n{bpfilterd?.Log}");
        var monitors = Variants.Select(v => fw.Start(nft, v, env)).ToList();
        try
        {
            int Members() => bpfilterd != null ? GroupMembers.InDaemon(bpfilterd, GroupMembers.Trace) : GroupMembers.InKernel(fw, GroupMembers.Trace);
            WaitFor(() => Members() >= monitors.Count, "the monitors did not subscribe to NFNLGRP_NFTRACE");
            Send(client, Packets());
            // every packet has been through the input hook once its last line came: wait until nothing more comes
            WaitFor(() => Settled(monitors), "the trace never settled");
            var results = monitors.Select(m => m.Stop()).ToList();
            foreach (var r in results) Assert.True(r.Stderr.Length == 0, r.ToString());
            if (bpfilterd != null)
            {
                Assert.True(bpfilterd.IsAlive, bpfilterd.Log);
                // ip other/in lifts, but a packet traced in prerouting reaches it: the kernel runs (and traces) it
                Assert.Contains("placement: table ip other chain in: kernel nf_tables (kernel-placed table inet t chain pre sets meta nftrace", bpfilterd.Log);
            }
            return results.Select(r => Normalize(r.Stdout)).ToList();
        }
        finally
        {
            foreach (var m in monitors) m.Dispose();
        }
    }

    static void Send(NetNs client, IEnumerable<byte[]> frames) => client.Run(() =>
    {
        int fd = LinuxSockets.Socket(LinuxSockets.AF_PACKET, LinuxSockets.SOCK_RAW, 0);
        try
        {
            int index = LinuxSockets.IfIndex(ClientDevice);
            foreach (var f in frames)
            {
                LinuxSockets.SendLink(fd, index, f);
                Thread.Sleep(150); // one packet's lines before the next's
            }
        }
        finally
        {
            LinuxSockets.Close(fd);
        }
        return 0;
    });

    static readonly Dictionary<BackgroundProcess, (string Text, long Since)> Seen = [];

    /// <summary>True once some output came and none for a second.</summary>
    static bool Settled(List<BackgroundProcess> monitors)
    {
        var now = Environment.TickCount64;
        bool all = true;
        foreach (var m in monitors)
        {
            var text = m.Stdout;
            lock (Seen)
            {
                if (!Seen.TryGetValue(m, out var s) || s.Text != text) Seen[m] = (text, now);
                all &= text.Length > 0 && now - Seen[m].Since >= 1000;
            }
        }
        return all;
    }

    /// <summary>
    /// Trace ids become T1, T2... in order of first appearance; the lines of one id are the lines of one
    /// packet (sent apart), so an id that also appeared out of order would show as a difference.
    /// </summary>
    static string Normalize(string output)
    {
        var ids = new Dictionary<string, string>();
        string Number(string id) => ids.TryGetValue(id, out var n) ? n : ids[id] = $"T{ids.Count + 1}";
        output = TraceId().Replace(output, m => $"trace id {Number(m.Groups[1].Value)}");
        return JsonId().Replace(output, m => $"\"id\": \"{Number(m.Groups[1].Value)}\"");
    }

    static IEnumerable<string> TraceIds(string normalized) => NormalizedId().Matches(normalized).Select(m => m.Value);

    static void WaitFor(Func<bool> done, string why)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(20)) throw new TimeoutException(why);
            Thread.Sleep(100);
        }
    }

    static string Mac(byte[] m) => string.Join(':', m.Select(x => x.ToString("x2")));

    [GeneratedRegex(@"trace id ([0-9a-f]{8})")]
    private static partial Regex TraceId();

    [GeneratedRegex(@"""id"": ""?([0-9a-f]+)""?")]
    private static partial Regex JsonId();

    [GeneratedRegex(@"\bT\d+\b")]
    private static partial Regex NormalizedId();
}
