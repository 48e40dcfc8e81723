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


    [LibraryImport("libc", EntryPoint = "setfsuid")]
    private static partial int SetFsuid(uint uid);

    [LibraryImport("libc", EntryPoint = "setfsgid")]
    private static partial int SetFsgid(uint gid);
}
