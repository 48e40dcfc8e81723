using System.Text;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Log;
using Bpfilter.Backend.Tests.Attach;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// The kernel is the oracle: nft `log` rules run in a namespace we create (with nf_log_all_netns=1
/// for the duration, restored after), crafted frames go over the veth pair, and the kernel's lines
/// read back from /dev/kmsg must equal (1) what <see cref="NfLogFormatter"/> makes of the same frame
/// and (2) what it makes of the event our BPF program captured for the same packet at the same hook.
/// </summary>
[Collection("nf_log")]
public class LogDifferentialTests
{
    private static readonly string Run = Guid.NewGuid().ToString("N")[..6];


    private static LogNet Net(VethPair veth) =>
        new(LogFrames.MacOf(veth.Client, VethPair.ClientDevice), LogFrames.MacOf(veth.Server, VethPair.ServerDevice), veth.ClientAddress, veth.ServerAddress);

    [Fact]
    public void IpAndIp6PreroutingLinesMatchTheKernel()
    {
        using var veth = new VethPair();
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var programs = new LogPrograms();
        using var v4 = programs.Netfilter(2, 0);
        using var v6 = programs.Netfilter(10, 0);
        using var l4 = VethPair.InNamespace(veth.Server, () => BpfLink.AttachNetfilter(v4, 2, 0, 10));
        using var l6 = VethPair.InNamespace(veth.Server, () => BpfLink.AttachNetfilter(v6, 10, 0, 10));
        var net = Net(veth);
        var failures = new StringBuilder();
        for (var i = 0; i < LogCase.Ip.Length; i++)
        {
            var c = LogCase.Ip[i];
            var prefix = $"LG{Run}-{i} ";
            var config = new LogConfig(prefix, c.Config.Level, c.Config.Flags);
            var v6case = c.EtherType == 0x86dd;
            var family = v6case ? "ip6" : "ip";
            var match = v6case ? $"ip6 saddr {LogNet.Client6}" : $"ip saddr {net.Client}";
            var mark = c.Mark != 0 ? $"chain setmark {{ type filter hook prerouting priority -10; {match} meta mark set 0x{c.Mark:x}; }}\n" : "";
            NftInNamespace.Apply(veth.Server, $"flush ruleset\ntable {family} lg {{\n{mark}chain pre {{ type filter hook prerouting priority 0; {match} log prefix \"{prefix}\" {c.NftArguments}; }}\n}}\n");
            var frame = c.Frame(net);
            LogFrames.Inject(veth.Client, VethPair.ClientDevice, frame);
            var kernel = kmsg.WaitFor(prefix);
            var expectedEvent = c.ExpectedEvent(frame, (byte)(v6case ? 10 : 2), VethPair.ServerDevice, trimmed: true);
            var fromFrame = NfLogFormatter.Format(expectedEvent, config);
            var bpfEvent = programs.WaitFor(expectedEvent.Packet);
            var fromBpf = NfLogFormatter.Format(bpfEvent, config);
            if (kernel.Level != config.Level) failures.AppendLine($"{c}: kernel level {kernel.Level}, configured {config.Level}");
            if (fromFrame != kernel.Text) failures.AppendLine($"{c}: formatter\n  kernel: [{kernel.Text}]\n  ours:   [{fromFrame}]");
            if (fromBpf != kernel.Text) failures.AppendLine($"{c}: bpf event\n  kernel: [{kernel.Text}]\n  ours:   [{fromBpf}]");
        }
        NftInNamespace.Apply(veth.Server, "flush ruleset\n");
        Assert.True(failures.Length == 0, failures.ToString());
    }

    private static readonly LogCase[] Netdev =
    [
        LogCase.Ip[0], LogCase.Ip[1], LogCase.Ip[9], LogCase.Ip[23], LogCase.Ip[24], LogCase.Ip[28], LogCase.Ip[31],
        new("arp request", 0x0806, new LogConfig(""), n => LogFrames.Arp(1, LogNet.FakeMac, "10.99.0.77", new byte[6], n.Server)),
        new("arp reply, ether", 0x0806, new LogConfig("", 6, NfLogFlags.MacDecode), n => LogFrames.Arp(2, LogNet.FakeMac, "10.99.0.77", n.ServerMac, n.Server)),
        new("arp, not ethernet hardware", 0x0806, new LogConfig(""), n => [0, 6, 8, 0, 6, 4, 0, 1, .. new byte[20]]),
        new("unknown ethertype", 0x88b5, new LogConfig(""), n => new byte[30]),
        new("unknown ethertype, ether", 0x88b5, new LogConfig("", 4, NfLogFlags.All), n => new byte[30]),
        new("vlan udp4", 0x8100, new LogConfig(""), n => [0x20, 0x05, 0x08, 0x00, .. LogFrames.Ipv4(n.Client, n.Server, 17, LogFrames.Udp(40030, 9))]),
        new("vlan udp4, ether", 0x8100, new LogConfig("", 4, NfLogFlags.MacDecode),
            n => [0x00, 0x07, 0x08, 0x00, .. LogFrames.Ipv4(n.Client, n.Server, 17, LogFrames.Udp(40031, 9))]),
        new("802.1ad icmp6, all", 0x88a8, new LogConfig("", 4, NfLogFlags.All),
            n => [0x0f, 0xff, 0x86, 0xdd, .. LogFrames.Ipv6(LogNet.Client6, LogNet.Server6, 58, LogFrames.Icmp(128, 0, 0x00010002))]),
        new("q-in-q", 0x88a8, new LogConfig("", 4, NfLogFlags.All), n => [0x00, 0x03, 0x81, 0x00, 0x00, 0x04, 0x08, 0x00, .. new byte[20]]),
    ];

    /// <summary>
    /// XDP against nft's netdev ingress hook on the same device: the XDP program (attached for real)
    /// and a BPF_PROG_TEST_RUN of it over the same frame both give events formatted exactly as the
    /// kernel logs the frame at ingress (family netdev: IPv4, IPv6, ARP and unknown EtherTypes).
    /// </summary>
    [Fact]
    public void XdpEventsMatchTheKernelsNetdevIngressLines()
    {
        using var veth = new VethPair();
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var programs = new LogPrograms();
        using var xdp = programs.Xdp(VethPair.ServerDevice);
        using var link = VethPair.InNamespace(veth.Server, () => BpfLink.AttachXdp(xdp, BpfLink.IfIndex(VethPair.ServerDevice)));
        var net = Net(veth);
        var failures = new StringBuilder();
        for (var i = 0; i < Netdev.Length; i++)
        {
            var c = Netdev[i];
            var prefix = $"LX{Run}-{i} ";
            var config = new LogConfig(prefix, c.Config.Level, c.Config.Flags);
            NftInNamespace.Apply(veth.Server, $"flush ruleset\ntable netdev lg {{\nchain in {{ type filter hook ingress device {VethPair.ServerDevice} priority 0; " +
                $"ether saddr 02:00:00:00:00:77 log prefix \"{prefix}\" {c.NftArguments}; }}\n}}\n");
            var frame = c.Frame(net, LogNet.FakeMac);
            var expected = c.ExpectedEvent(frame, LogEmitter.NfProtoNetdev, VethPair.ServerDevice, trimmed: false);

            while (programs.Events.TryDequeue(out _)) { }
            Assert.Equal(2u, xdp.TestRun(frame).ReturnValue);
            LogEvent testRun;
            try { testRun = programs.WaitFor(expected.Packet); }
            catch (TimeoutException e) { failures.AppendLine($"{c}: test run: {e.Message}; want {Convert.ToHexString(expected.Packet)}"); continue; }
            while (programs.Events.TryDequeue(out _)) { }

            LogFrames.Inject(veth.Client, VethPair.ClientDevice, frame);
            var kernel = kmsg.WaitFor(prefix);
            var live = programs.WaitFor(expected.Packet);
            foreach (var (what, ev) in new[] { ("frame", expected), ("xdp test run", testRun), ("xdp attached", live) })
            {
                var ours = NfLogFormatter.Format(ev, config);
                if (ours != kernel.Text) failures.AppendLine($"{c}: {what}\n  kernel: [{kernel.Text}]\n  ours:   [{ours}]");
            }
            if (kernel.Level != config.Level) failures.AppendLine($"{c}: kernel level {kernel.Level}, configured {config.Level}");
        }
        NftInNamespace.Apply(veth.Server, "flush ruleset\n");
        Assert.True(failures.Length == 0, failures.ToString());
    }

    /// <summary>The arp family's input hook (nf_log_arp), formatter against the kernel.</summary>
    [Fact]
    public void ArpInputLinesMatchTheKernel()
    {
        using var veth = new VethPair();
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        var net = Net(veth);
        var failures = new StringBuilder();
        var cases = Netdev.Where(c => c.EtherType == 0x0806).ToArray();
        for (var i = 0; i < cases.Length; i++)
        {
            var c = cases[i];
            var prefix = $"LA{Run}-{i} ";
            var config = new LogConfig(prefix, c.Config.Level, c.Config.Flags);
            NftInNamespace.Apply(veth.Server, $"flush ruleset\ntable arp lg {{\nchain in {{ type filter hook input priority 0; log prefix \"{prefix}\" {c.NftArguments}; }}\n}}\n");
            var frame = c.Frame(net, LogNet.FakeMac);
            LogFrames.Inject(veth.Client, VethPair.ClientDevice, frame);
            KmsgRecord kernel;
            try { kernel = kmsg.WaitFor(prefix, 1500); }
            catch (TimeoutException) { failures.AppendLine($"{c}: the kernel logged nothing"); continue; }
            var ours = NfLogFormatter.Format(c.ExpectedEvent(frame, 3, VethPair.ServerDevice, trimmed: false), config);
            if (ours != kernel.Text) failures.AppendLine($"{c}\n  kernel: [{kernel.Text}]\n  ours:   [{ours}]");
        }
        NftInNamespace.Apply(veth.Server, "flush ruleset\n");
        Assert.True(failures.Length == 0, failures.ToString());
    }
}
