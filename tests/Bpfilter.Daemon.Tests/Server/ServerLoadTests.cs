using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Daemon.Server;
using Nft.Netlink;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>Many clients at once, a client that stops reading, and the server's named limits.</summary>
public partial class ServerLoadTests
{
    const int ReplySize = 64 << 10;

    /// <summary>A bare nlmsghdr with this sequence number: enough for the server to name it in an ENOBUFS error.</summary>
    static byte[] Request(uint seq)
    {
        var w = new NetlinkWriter();
        w.EndMessage(w.BeginMessage(0x0a10, NlmFlags.Request, seq, 0));
        return w.ToArray();
    }

    static uint SeqOf(byte[] request) => BinaryPrimitives.ReadUInt32LittleEndian(request.AsSpan(8));

    /// <summary>One 64 KiB datagram that starts with the request's sequence number.</summary>
    static IReadOnlyList<byte[]> BigReply(byte[] request, uint portId)
    {
        var d = new byte[ReplySize];
        BinaryPrimitives.WriteUInt32LittleEndian(d, SeqOf(request));
        return [d];
    }

    [Fact]
    public async Task ConcurrentClientsEnterTheEngineOneAtATime()
    {
        using var dir = new TempSocketDir();
        var ep = new ScriptedEndpoint((req, port) =>
        {
            Thread.Sleep(1); // hold the engine, so that a missing lock would show as overlap
            return [[.. req, .. BitConverter.GetBytes(port)]];
        });
        await using var server = new DaemonServer(ep, dir.Socket());
        server.Start();
        const int clients = 16, calls = 40;
        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(() =>
        {
            using var client = new FrameClient(server.SocketPath);
            for (uint i = 0; i < calls; i++)
            {
                var request = Request((uint)c << 16 | i);
                var reply = Assert.Single(client.Call((uint)c + 100, request));
                Assert.Equal([.. request, .. BitConverter.GetBytes((uint)c + 100)], reply); // its own answer, in order
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        Assert.Equal(clients * calls, ep.Calls);
        Assert.False(ep.Overlapped, "two requests were inside the endpoint at once");
    }

    [Fact]
    public async Task ClientThatStopsReadingGetsEnobufsAndBlocksNobody()
    {
        using var dir = new TempSocketDir();
        var limits = new ServerLimits { MaxQueuedReplyBytes = 1 << 20, MaxQueuedReplies = 64 };
        var stalledCalls = 0;
        var ep = new ScriptedEndpoint((req, port) =>
        {
            if (port == 1) Interlocked.Increment(ref stalledCalls);
            return BigReply(req, port);
        });
        await using var server = new DaemonServer(ep, dir.Socket(), limits: limits);
        server.Start();

        // 300 requests, never reading: 300 x 64 KiB of replies would be 19 MiB.
        const int sent = 300;
        using var stalled = new FrameClient(server.SocketPath);
        for (uint i = 0; i < sent; i++) stalled.SendRaw(FrameClient.Request(1, Request(i)));
        int before = -1;
        for (int wait = 0; wait < 50 && before != Volatile.Read(ref stalledCalls); wait++)
        {
            before = Volatile.Read(ref stalledCalls);
            await Task.Delay(100);
        }
        // The daemon stopped reading this client once its queue was full: bounded by the frame limit
        // plus the few replies the socket's send buffer (net.core.wmem_default, doubled by the kernel) took.
        int inSocket = 2 * int.Parse(File.ReadAllText("/proc/sys/net/core/wmem_default").Trim()) / ReplySize + 2;
        Assert.InRange(Volatile.Read(ref stalledCalls), limits.MaxQueuedReplies, limits.MaxQueuedReplies + inSocket);

        // Meanwhile another client is served at once.
        var sw = Stopwatch.StartNew();
        using (var other = new FrameClient(server.SocketPath))
            for (uint i = 0; i < 20; i++)
                Assert.Equal(i, BinaryPrimitives.ReadUInt32LittleEndian(Assert.Single(other.Call(2, Request(i)))));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"the other client took {sw.Elapsed}");

        // Reading now: every request has exactly one reply frame, in order; those that did not fit are ENOBUFS.
        int full = 0, nobufs = 0;
        for (uint i = 0; i < sent; i++)
        {
            var d = Assert.Single(stalled.ReadReply());
            if (d.Length == ReplySize)
            {
                Assert.Equal(i, BinaryPrimitives.ReadUInt32LittleEndian(d));
                full++;
                continue;
            }
            var h = NlMsgHeader.Read(d);
            Assert.Equal(NlMsgType.Error, h.Type);
            Assert.Equal(i, h.Seq);
            Assert.Equal(-Errno.ENOBUFS, BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(NlMsgHeader.Size)));
            nobufs++;
        }
        Assert.True(nobufs > 0, "no reply was dropped although the client read nothing");
        Assert.True(full > limits.MaxQueuedReplyBytes / ReplySize, $"only {full} replies were delivered whole");
        Assert.Equal(sent, Volatile.Read(ref stalledCalls)); // dropped replies still took effect, as in the kernel
    }

    [Fact]
    public async Task ReplyLargerThanTheQueueReachesAClientThatReads()
    {
        using var dir = new TempSocketDir();
        var limits = new ServerLimits { MaxQueuedReplyBytes = 1 << 20, MaxQueuedReplies = 4 };
        var ep = new ScriptedEndpoint((req, _) => [.. Enumerable.Range(0, 64).Select(i => new byte[ReplySize])]); // a 4 MiB dump
        await using var server = new DaemonServer(ep, dir.Socket(), limits: limits);
        server.Start();
        using var client = new FrameClient(server.SocketPath);
        for (uint i = 0; i < 3; i++) Assert.Equal(64, client.Call(1, Request(i)).Count);
    }

    [Fact]
    public void RequestLimitIsTheInterposersAndTheFramings()
    {
        Assert.Equal(DaemonFrame.MaxRequest, ServerLimits.MaxRequestBytes);
        var source = File.ReadAllText(Path.Combine(RepoPaths.NftablesDir, "libbfnft.c"));
        var m = DefineRegex().Match(source);
        Assert.True(m.Success, "BFNFT_MAX_REQUEST not found in libbfnft.c");
        Assert.Equal(ServerLimits.MaxRequestBytes, int.Parse(m.Groups[1].Value) << int.Parse(m.Groups[2].Value));
    }

    [GeneratedRegex(@"#define BFNFT_MAX_REQUEST \((\d+)u << (\d+)\)")]
    private static partial Regex DefineRegex();
}
