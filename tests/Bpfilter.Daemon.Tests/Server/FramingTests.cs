using System.Buffers.Binary;
using Bpfilter.Daemon.Server;
using Nft.Netlink;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>The daemon's framing over a real socket, against a scripted endpoint.</summary>
public class FramingTests
{
    /// <summary>Answers each request with: the request reversed, then the port id, then `count` filler datagrams.</summary>
    static IReadOnlyList<byte[]> Answer(byte[] request, uint portId)
    {
        var result = new List<byte[]> { request.Reverse().ToArray() };
        var pid = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(pid, portId);
        result.Add(pid);
        int count = request.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(request) : 0;
        for (int i = 0; i < count; i++) result.Add(Enumerable.Repeat((byte)i, DaemonFrame.DumpChunk).ToArray());
        return result;
    }

    static byte[] Payload(int fillers, int extra = 0)
    {
        var p = new byte[4 + extra];
        BinaryPrimitives.WriteInt32LittleEndian(p, fillers);
        for (int i = 0; i < extra; i++) p[4 + i] = (byte)(i * 7);
        return p;
    }

    static async Task<(DaemonServer, ScriptedEndpoint)> Start(TempSocketDir dir, Func<byte[], uint, IReadOnlyList<byte[]>>? answer = null)
    {
        var ep = new ScriptedEndpoint(answer ?? Answer);
        var server = new DaemonServer(ep, dir.Socket());
        server.Start();
        await Task.Yield();
        return (server, ep);
    }

    [Fact]
    public async Task EachRequestGetsExactlyItsDatagramsInOrder()
    {
        using var dir = new TempSocketDir();
        var (server, ep) = await Start(dir);
        await using var _ = server;
        using var c = new FrameClient(server.SocketPath);
        var payload = Payload(3, extra: 100);
        var reply = c.Call(4242, payload);
        Assert.Equal(5, reply.Count);
        Assert.Equal(payload.Reverse().ToArray(), reply[0]);
        Assert.Equal(4242u, BinaryPrimitives.ReadUInt32LittleEndian(reply[1]));
        for (int i = 0; i < 3; i++) Assert.Equal(Enumerable.Repeat((byte)i, DaemonFrame.DumpChunk).ToArray(), reply[2 + i]);
        Assert.True(ep.Seen.TryDequeue(out var seen));
        Assert.Equal(payload, seen.Request);
        Assert.Equal(4242u, seen.PortId);
    }

    [Fact]
    public async Task EmptyAnswerIsAnEmptyFrame()
    {
        using var dir = new TempSocketDir();
        var (server, _) = await Start(dir, (_, _) => []);
        await using var _s = server;
        using var c = new FrameClient(server.SocketPath);
        Assert.Empty(c.Call(1, Payload(0)));
        Assert.Empty(c.Call(1, []));
    }

    [Fact]
    public async Task PipelinedAndFragmentedRequestsAreAnsweredInOrder()
    {
        using var dir = new TempSocketDir();
        var (server, ep) = await Start(dir);
        await using var _ = server;
        using var c = new FrameClient(server.SocketPath);
        // Two whole frames in one write.
        c.SendRaw([.. FrameClient.Request(1, Payload(0, 3)), .. FrameClient.Request(2, Payload(1, 5))]);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(c.ReadReply()[1]));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(c.ReadReply()[1]));
        // One frame dribbled a byte at a time.
        var frame = FrameClient.Request(3, Payload(0, 40));
        foreach (var b in frame) c.SendRaw([b]);
        var r = c.ReadReply();
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(r[1]));
        Assert.Equal(3, ep.Calls);
    }

    [Fact]
    public async Task MegabyteRepliesAndRequestsCrossTheSocket()
    {
        using var dir = new TempSocketDir();
        var (server, _) = await Start(dir);
        await using var _s = server;
        using var c = new FrameClient(server.SocketPath);
        var payload = Payload(400, extra: 3 << 20); // 3 MiB request, 400 x 16 KiB = 6.25 MiB reply
        var reply = c.Call(7, payload);
        Assert.Equal(402, reply.Count);
        Assert.Equal(payload.Reverse().ToArray(), reply[0]);
        Assert.All(reply.Skip(2).Select((d, i) => (d, i)), x => Assert.True(x.d.Length == DaemonFrame.DumpChunk && x.d[0] == (byte)x.i));
    }

    [Fact]
    public async Task OversizedFrameClosesOnlyThatConnection()
    {
        using var dir = new TempSocketDir();
        var (server, ep) = await Start(dir);
        await using var _ = server;
        using var good = new FrameClient(server.SocketPath);
        using var bad = new FrameClient(server.SocketPath);
        var header = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, DaemonFrame.MaxRequest + 1u);
        bad.SendRaw(header);
        Assert.True(bad.IsClosedByPeer());
        Assert.Equal(0, ep.Calls);
        Assert.Equal(2, good.Call(9, Payload(0)).Count);
    }

    [Fact]
    public async Task EndpointExceptionClosesOnlyThatConnection()
    {
        using var dir = new TempSocketDir();
        var (server, _) = await Start(dir, (req, pid) =>
            req.Length == 1 ? throw new InvalidOperationException("endpoint bug") : Answer(req, pid));
        await using var _s = server;
        using var victim = new FrameClient(server.SocketPath);
        using var other = new FrameClient(server.SocketPath);
        victim.SendRaw(FrameClient.Request(1, [0xff]));
        Assert.True(victim.IsClosedByPeer());
        Assert.Equal(2, other.Call(2, Payload(0)).Count);
    }

    [Fact]
    public async Task RequestsOfAllConnectionsAreSerialized()
    {
        using var dir = new TempSocketDir();
        var (server, ep) = await Start(dir, (req, pid) =>
        {
            Thread.SpinWait(20000); // widen the window in which an overlap would be seen
            return Answer(req, pid);
        });
        await using var _ = server;
        const int clients = 8, each = 40;
        var tasks = Enumerable.Range(0, clients).Select(k => Task.Run(() =>
        {
            using var c = new FrameClient(server.SocketPath);
            for (int i = 0; i < each; i++)
                Assert.Equal((uint)(k * 1000 + i), BinaryPrimitives.ReadUInt32LittleEndian(c.Call((uint)(k * 1000 + i), Payload(0, i))[1]));
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(clients * each, ep.Calls);
        Assert.False(ep.Overlapped);
    }

    [Fact]
    public void UnprivilegedAnswerIsTheKernelsEperm()
    {
        // BATCH_BEGIN (seq 7) followed by a NEWTABLE: nfnetlink answers only the first header.
        var w = new NetlinkWriter();
        var t = w.BeginNfMessage(Nfnl.SubsysNone, (byte)Nfnl.MsgBatchBegin, NlmFlags.Request, 7, 0, 0, Nfnl.SubsysNftables);
        w.EndMessage(t);
        t = w.BeginNfMessage(Nfnl.SubsysNftables, 0, NlmFlags.Request | NlmFlags.Create, 8, 0, 2, 0);
        w.PutString(1, "t");
        w.EndMessage(t);
        var request = w.ToArray();
        var replies = PermissionDenied.Reply(request, 5403);
        var d = Assert.Single(replies);
        var h = NlMsgHeader.Read(d);
        Assert.Equal(new NlMsgHeader(40, NlMsgType.Error, NlmFlags.None, 7, 5403), h);
        Assert.Equal(-Errno.EPERM, BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(16)));
        Assert.Equal(request.AsSpan(0, 20).ToArray(), d.AsSpan(20, 20).ToArray());
        // Not even a whole header: nothing, as nfnetlink_rcv drops it.
        Assert.Empty(PermissionDenied.Reply(request.AsSpan(0, 10), 1));
    }
}
