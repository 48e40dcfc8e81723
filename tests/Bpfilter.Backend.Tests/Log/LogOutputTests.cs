using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Log;
using Bpfilter.Backend.Tests.Attach;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// Locally generated packets at the output hook: no input device (so no MAC=), OUT= set, and the
/// sending socket's credentials for `flags skuid`. The socket is made by a thread whose fsuid/fsgid
/// are 1234/5678, which is what the socket file's credentials then hold.
/// </summary>
[Collection("nf_log")]
public partial class LogOutputTests
{
    private const ushort Port = 4444;

    [Theory]
    [InlineData(NfLogFlags.Uid)]
    [InlineData(NfLogFlags.All)]
    [InlineData(NfLogFlags.None)]
    public void OutputHookLinesWithSocketCredentialsMatchTheKernel(NfLogFlags flags)
    {
        using var veth = new VethPair();
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var programs = new LogPrograms();
        using var prog = programs.Netfilter(2, 3);
        using var link = VethPair.InNamespace(veth.Server, () => BpfLink.AttachNetfilter(prog, 2, 3, 10));
        var prefix = $"LO{Guid.NewGuid().ToString("N")[..6]} ";
        var config = new LogConfig(prefix, 4, flags);
        var nftFlags = flags switch { NfLogFlags.Uid => "flags skuid", NfLogFlags.All => "flags all", _ => "" };
        NftInNamespace.Apply(veth.Server, $"flush ruleset\ntable ip lg {{\nchain out {{ type filter hook output priority 0; ip daddr {veth.ClientAddress} udp dport {Port} log prefix \"{prefix}\" {nftFlags}; }}\n}}\n");
        try
        {
            using var socket = VethPair.InNamespace(veth.Server, () =>
            {
                SetFsuid(1234);
                SetFsgid(5678);
                try { return new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp); }
                finally { SetFsuid(0); SetFsgid(0); }
            });
            socket.SendTo(new byte[21], new IPEndPoint(IPAddress.Parse(veth.ClientAddress), Port));
            var kernel = kmsg.WaitFor(prefix);
            var ev = programs.WaitFor(e => e.Packet.Length >= 28 && e.Packet[9] == 17 && BinaryPrimitives.ReadUInt16BigEndian(e.Packet.AsSpan(22)) == Port,
                $"the UDP datagram to port {Port}");
            Assert.Equal(kernel.Text, NfLogFormatter.Format(ev, config));
            Assert.Equal(LogEventFlags.HasOut | LogEventFlags.UidValid, ev.Flags & (LogEventFlags.HasOut | LogEventFlags.HasIn | LogEventFlags.UidValid));
            if (flags.HasFlag(NfLogFlags.Uid)) Assert.Contains("UID=1234 GID=5678 ", kernel.Text);
        }
        finally { NftInNamespace.Apply(veth.Server, "flush ruleset\n"); }
    }


    /// <summary>IPv6 at the output hook: UID/GID and MARK come from the socket (dump_ipv6_packet's recurse level).</summary>
    [Fact]
    public void Ipv6OutputHookLineWithCredentialsAndMarkMatchesTheKernel()
    {
        using var veth = new VethPair();
        RunIp($"-n {veth.Client} addr add {LogNet.Client6}/64 dev {VethPair.ClientDevice} nodad");
        RunIp($"-n {veth.Server} addr add {LogNet.Server6}/64 dev {VethPair.ServerDevice} nodad");
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var programs = new LogPrograms();
        using var prog = programs.Netfilter(10, 3);
        using var link = VethPair.InNamespace(veth.Server, () => BpfLink.AttachNetfilter(prog, 10, 3, 10));
        var prefix = $"LO6{Guid.NewGuid().ToString("N")[..6]} ";
        var config = new LogConfig(prefix, 6, NfLogFlags.All);
        NftInNamespace.Apply(veth.Server, $"flush ruleset\ntable ip6 lg {{\nchain out {{ type filter hook output priority 0; ip6 daddr {LogNet.Client6} udp dport {Port} log prefix \"{prefix}\" level info flags all; }}\n}}\n");
        try
        {
            using var socket = VethPair.InNamespace(veth.Server, () =>
            {
                SetFsuid(4321);
                SetFsgid(8765);
                try { return new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp); }
                finally { SetFsuid(0); SetFsgid(0); }
            });
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 36 /* SO_MARK */, BitConverter.GetBytes(0x51));
            socket.SendTo(new byte[9], new IPEndPoint(IPAddress.Parse(LogNet.Client6), Port));
            var kernel = kmsg.WaitFor(prefix);
            var ev = programs.WaitFor(e => e.Packet.Length >= 48 && e.Packet[6] == 17 && BinaryPrimitives.ReadUInt16BigEndian(e.Packet.AsSpan(42)) == Port,
                $"the UDP datagram to [{LogNet.Client6}]:{Port}");
            Assert.Equal(kernel.Text, NfLogFormatter.Format(ev, config));
            Assert.EndsWith("UID=4321 GID=8765 MARK=0x51 ", kernel.Text);
            Assert.Equal(6, kernel.Level);
        }
        finally { NftInNamespace.Apply(veth.Server, "flush ruleset\n"); }
    }

    private static void RunIp(string args)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ip", args) { RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"ip {args}: {err}");
    }

    [LibraryImport("libc", EntryPoint = "setfsuid")]
    private static partial int SetFsuid(uint uid);

    [LibraryImport("libc", EntryPoint = "setfsgid")]
    private static partial int SetFsgid(uint gid);
}
