using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Bpfilter.Testing;

namespace Bpfilter.Soak;

/// <summary>
/// UDP between the sender and the firewall's stack: a socket bound on the firewall for every port the
/// soak uses (one thread counts what arrives), a sending socket in the sender namespace, and a
/// background flood to two ports (one the fixed table drops, one nothing matches) that runs for the
/// whole soak, restarts included.
/// </summary>
public sealed class UdpTraffic : IDisposable
{
    public const int Payload = 32;
    /// <summary>What a counter adds per datagram: the IPv4 packet (skb->len past the link layer).</summary>
    public const int PacketBytes = 20 + 8 + Payload;
    public const int DroppedPort = 40000, OpenPort = 40001;

    readonly Dictionary<int, Socket> _receivers = [];
    readonly ConcurrentDictionary<int, long> _received = new();
    readonly Socket _sender, _flooder;
    readonly IPEndPoint _firewall;
    readonly CancellationTokenSource _stop = new();
    readonly Thread _receiveThread, _floodThread;
    long _flooded;

    public UdpTraffic(SoakTopology topology, IEnumerable<int> ports)
    {
        _firewall = new IPEndPoint(IPAddress.Parse(SoakTopology.FirewallAddress), 0);
        foreach (var port in ports.Append(DroppedPort).Append(OpenPort))
            _receivers[port] = NetNs.Run(topology.Daemon.Ns.NetnsPath, () =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.ReceiveBufferSize = 1 << 20;
                s.Bind(new IPEndPoint(IPAddress.Any, port));
                return s;
            });
        _sender = NetNs.Run(topology.Sender.NetnsPath, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _flooder = NetNs.Run(topology.Sender.NetnsPath, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _receiveThread = new Thread(Receive) { IsBackground = true, Name = "soak receive" };
        _receiveThread.Start();
        _floodThread = new Thread(Flood) { IsBackground = true, Name = "soak flood" };
        _floodThread.Start();
    }

    public long Received(int port) => _received.GetValueOrDefault(port);
    public long Flooded => Interlocked.Read(ref _flooded);

    public void Send(int port, int count)
    {
        var payload = new byte[Payload];
        for (int i = 0; i < count; i++) _sender.SendTo(payload, new IPEndPoint(_firewall.Address, port));
    }

    void Receive()
    {
        var buffer = new byte[2048];
        var byPort = _receivers.ToDictionary(kv => kv.Value, kv => kv.Key);
        while (!_stop.IsCancellationRequested)
        {
            var ready = _receivers.Values.ToList();
            try
            {
                Socket.Select(ready, null, null, 100_000);
            }
            catch (ObjectDisposedException) { return; }
            foreach (var s in ready)
            {
                try
                {
                    while (s.Available > 0)
                    {
                        s.Receive(buffer);
                        _received.AddOrUpdate(byPort[s], 1, (_, n) => n + 1);
                    }
                }
                catch (ObjectDisposedException) { return; }
            }
        }
    }

    /// <summary>About a thousand datagrams a second, half to the dropped port, half to the open one.</summary>
    void Flood()
    {
        var s = _flooder;
        var payload = new byte[Payload];
        var dropped = new IPEndPoint(_firewall.Address, DroppedPort);
        var open = new IPEndPoint(_firewall.Address, OpenPort);
        while (!_stop.IsCancellationRequested)
        {
            s.SendTo(payload, dropped);
            s.SendTo(payload, open);
            Interlocked.Add(ref _flooded, 2);
            Thread.Sleep(2);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _floodThread.Join();
        _receiveThread.Join();
        foreach (var s in _receivers.Values) s.Dispose();
        _sender.Dispose();
        _flooder.Dispose();
    }
}
