using System.Buffers;
using System.Net.Sockets;
using Nft.Netlink;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>Talks to bpfilterd directly with the DaemonFrame framing, as the interposer does.</summary>
public sealed class DaemonClient : IDisposable
{
    readonly Socket _socket;
    byte[] _pending = [];

    public DaemonClient(string socketPath, TimeSpan? timeout = null)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        _socket.ReceiveTimeout = _socket.SendTimeout = (int)(timeout ?? TimeSpan.FromSeconds(10)).TotalMilliseconds;
    }

    /// <summary>Sends one request frame and returns the datagrams of its one reply frame.</summary>
    public List<byte[]> Exchange(uint portId, ReadOnlySpan<byte> payload)
    {
        var w = new ArrayBufferWriter<byte>(payload.Length + DaemonFrame.HeaderSize);
        DaemonFrame.WriteRequest(w, portId, payload);
        _socket.Send(w.WrittenSpan);

        var buffer = new byte[64 * 1024];
        while (true)
        {
            var seq = new ReadOnlySequence<byte>(_pending);
            if (DaemonFrame.TryReadReply(ref seq, out var datagrams))
            {
                _pending = seq.ToArray();
                return datagrams;
            }
            int n = _socket.Receive(buffer); // throws SocketException(TimedOut) when the daemon stays silent
            if (n == 0) throw new IOException("bpfilterd closed the connection instead of replying");
            _pending = [.. _pending, .. buffer.AsSpan(0, n)];
        }
    }

    public void Dispose() => _socket.Dispose();
}
