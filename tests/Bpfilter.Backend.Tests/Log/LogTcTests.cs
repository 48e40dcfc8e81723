using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Log;
using Bpfilter.Backend.Tests.Attach;

namespace Bpfilter.Backend.Tests.Log;

/// <summary>
/// tcx programs against nft's netdev ingress and egress hooks on the same devices, with real
/// traffic: a marked UDP datagram from the client (egress on the client, ingress on the server) and
/// the server's ICMP port unreachable answer (egress on the server). At egress the kernel prints
/// neither MARK nor the quoted packet of the ICMP error, because skb->data is at the MAC header there.
/// </summary>
[Collection("nf_log")]
public class LogTcTests
{
    private const ushort Port = 4445;

    [Fact]
    public void TcEventsMatchTheKernelsNetdevIngressAndEgressLines()
    {
        using var veth = new VethPair();
        using var logging = new AllNetnsLogging();
        using var kmsg = new KernelLog();
        using var programs = new LogPrograms();
        using var clientOut = programs.Tc(VethPair.ClientDevice, ingress: false, 1);
        using var serverOut = programs.Tc(VethPair.ServerDevice, ingress: false, 2);
        using var serverIn = programs.Tc(VethPair.ServerDevice, ingress: true, 3);
        using var l1 = VethPair.InNamespace(veth.Client, () => BpfLink.AttachTcx(clientOut, BpfLink.IfIndex(VethPair.ClientDevice), ingress: false));
        using var l2 = VethPair.InNamespace(veth.Server, () => BpfLink.AttachTcx(serverOut, BpfLink.IfIndex(VethPair.ServerDevice), ingress: false));
        using var l3 = VethPair.InNamespace(veth.Server, () => BpfLink.AttachTcx(serverIn, BpfLink.IfIndex(VethPair.ServerDevice), ingress: true));
        var tag = Guid.NewGuid().ToString("N")[..6];
        var configs = new Dictionary<uint, LogConfig>
        {
            [1] = new($"TC{tag}co ", 4, NfLogFlags.All),
            [2] = new($"TC{tag}so ", 6, NfLogFlags.All),
            [3] = new($"TC{tag}si ", 5, NfLogFlags.All),
        };
        NftInNamespace.Apply(veth.Client, $"table netdev lg {{\nchain out {{ type filter hook egress device {VethPair.ClientDevice} priority 0; " +
            $"ip daddr {veth.ServerAddress} udp dport {Port} log prefix \"{configs[1].Prefix}\" level warn flags all; }}\n}}\n");
        NftInNamespace.Apply(veth.Server, $"table netdev lg {{\n" +
            $"chain out {{ type filter hook egress device {VethPair.ServerDevice} priority 0; icmp type destination-unreachable log prefix \"{configs[2].Prefix}\" level info flags all; }}\n" +
            $"chain in {{ type filter hook ingress device {VethPair.ServerDevice} priority 0; ip saddr {veth.ClientAddress} udp dport {Port} log prefix \"{configs[3].Prefix}\" level notice flags all; }}\n}}\n");

        using var socket = VethPair.InNamespace(veth.Client, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        socket.SetRawSocketOption(1 /* SOL_SOCKET */, 36 /* SO_MARK */, BitConverter.GetBytes(0x2a));
        socket.SendTo(new byte[11], new IPEndPoint(IPAddress.Parse(veth.ServerAddress), Port));

        static bool Udp(LogEvent e) => e.Packet.Length >= 28 && e.Packet[9] == 17 && BinaryPrimitives.ReadUInt16BigEndian(e.Packet.AsSpan(22)) == Port;
        static bool Unreachable(LogEvent e) => e.Packet.Length >= 28 && e.Packet[9] == 1 && e.Packet[20] == 3;
        var cases = new (uint Id, Func<LogEvent, bool> Match)[] { (1, Udp), (3, Udp), (2, Unreachable) };
        foreach (var (id, match) in cases)
        {
            var config = configs[id];
            var kernel = kmsg.WaitFor(config.Prefix);
            var ev = programs.WaitFor(e => e.ConfigId == id && match(e), $"config {id}");
            Assert.Equal(kernel.Text, NfLogFormatter.Format(ev, config));
            Assert.Equal(config.Level, kernel.Level);
        }
        var clientLine = kmsg.WaitFor(configs[1].Prefix).Text;
        Assert.DoesNotContain("MARK=", clientLine); // the socket's mark is set, the kernel does not print it at egress
        Assert.Equal(0x2au, programs.WaitFor(e => e.ConfigId == 1 && Udp(e), "config 1").Mark);
        Assert.DoesNotContain("[", kmsg.WaitFor(configs[2].Prefix).Text);
    }
}
