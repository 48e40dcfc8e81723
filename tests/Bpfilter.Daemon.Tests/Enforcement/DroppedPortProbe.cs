using System.Net;
using System.Net.Sockets;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// UDP datagrams sent without pause from inside a namespace to one of its own addresses and port (through the output hook,
/// and lo's ingress), by a thread of its own while the test does other things (kills and restarts bpfilterd); counts how many
/// arrived. A port the ruleset drops must see none arrive at any moment: a window without the ruleset lets some through.
/// A send a drop at the output hook refuses (EPERM) still counts as sent.
/// </summary>
internal sealed class DroppedPortProbe : IDisposable
{
    readonly Socket _receiver, _sender;
    readonly IPEndPoint _to;
    readonly Thread _thread;
    volatile bool _stop;
    int _sent, _received;

    public DroppedPortProbe(NetNs ns, string address, int port)
    {
        _to = new IPEndPoint(IPAddress.Parse(address), port);
        // sockets opened inside the namespace stay in it
        _receiver = NetNs.Run(ns.NetnsPath, () =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Any, port));
            return s;
        });
        _sender = NetNs.Run(ns.NetnsPath, () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _thread = new Thread(Loop) { IsBackground = true, Name = $"probe {address}:{port}" };
        _thread.Start();
    }

    void Loop()
    {
        var payload = new byte[1];
        while (!_stop)
        {
            try
            {
                _sender.SendTo(payload, _to);
            }
            catch (SocketException) { /* dropped at output: EPERM */ }
            _sent++;
            Drain();
            Thread.Sleep(1);
        }
    }

    void Drain()
    {
        var buf = new byte[64];
        while (_receiver.Available > 0)
        {
            _receiver.Receive(buf);
            _received++;
        }
    }

    /// <summary>Stops sending, takes what is still queued, and returns (sent, arrived).</summary>
    public (int Sent, int Arrived) Stop()
    {
        _stop = true;
        _thread.Join();
        Thread.Sleep(200); // a datagram still on its way
        Drain();
        return (_sent, _received);
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
        _receiver.Dispose();
        _sender.Dispose();
    }
}
