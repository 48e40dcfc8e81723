using System.Buffers;
using System.Net.Sockets;
using Nft.Netlink;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>Speaks the interposer's side of DaemonFrame over a real Unix socket.</summary>
internal sealed class FrameClient : IDisposable
{
    readonly Socket _socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    byte[] _pending = [];

    public FrameClient(string path)
    {
        _socket.Connect(new UnixDomainSocketEndPoint(path));
        _socket.ReceiveTimeout = 20000;
    }

    public static byte[] Request(uint portId, ReadOnlySpan<byte> payload)
    {
        var w = new ArrayBufferWriter<byte>();
        DaemonFrame.WriteRequest(w, portId, payload);
        return w.WrittenSpan.ToArray();
    }

    public void SendRaw(ReadOnlySpan<byte> bytes) => _socket.Send(bytes);

    public List<byte[]> Call(uint portId, ReadOnlySpan<byte> payload)
    {
        SendRaw(Request(portId, payload));
        return ReadReply();
    }

    public List<byte[]> ReadReply()
    {
        var chunk = new byte[65536];
        while (true)
        {
            var seq = new ReadOnlySequence<byte>(_pending);
            if (DaemonFrame.TryReadReply(ref seq, out var datagrams))
            {
                _pending = seq.ToArray();
                return datagrams;
            }
            int n = _socket.Receive(chunk);
            if (n == 0) throw new EndOfStreamException("daemon closed the connection");
            _pending = [.. _pending, .. chunk.AsSpan(0, n)];
        }
    }

    /// <summary>True once the daemon has closed its side (a read returns end of stream).</summary>
    public bool IsClosedByPeer()
    {
        try
        {
            return _socket.Receive(new byte[16]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    public void Dispose() => _socket.Dispose();
}
