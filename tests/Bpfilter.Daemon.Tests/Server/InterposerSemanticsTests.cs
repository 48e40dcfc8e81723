using Bpfilter.Daemon.Server;
using Nft.Netlink;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>
/// The socket calls libbfnft.so emulates, one observation at a time (patches/nftables/tests/probe.c):
/// datagram boundaries, splitting and truncation, readiness for poll, EAGAIN, sender address,
/// port ids, ACK options, blocking reads, and other netlink families left alone.
/// </summary>
public class InterposerSemanticsTests
{
    static byte[] Message(int length, ushort type, uint seq, uint portId, byte fill)
    {
        var w = new NetlinkWriter();
        var t = w.BeginMessage(type, NlmFlags.Multi, seq, portId);
        w.WriteRaw(Enumerable.Repeat(fill, length - NlMsgHeader.Size).ToArray());
        w.EndMessage(t);
        return w.ToArray();
    }

    static IReadOnlyList<byte[]> Answer(byte[] request, uint portId)
    {
        var h = NlMsgHeader.Read(request);
        switch (h.Type)
        {
            case 0x100:
                return [
                    [.. Message(20, 0x200, h.Seq, portId, 1), .. Message(40, 0x200, h.Seq, portId, 2), .. Message(60, 0x200, h.Seq, portId, 3)],
                    Message(100, 0x200, h.Seq, portId, 0xab),
                ];
            case 0x101:
                // An error about a 40-byte request, with extack text and offset: 80 bytes in full.
                var offending = Message(40, 0x0a00, h.Seq, 0, 9);
                var w = new NetlinkWriter();
                NetlinkAck.Write(w, offending, NlMsgHeader.Read(offending), Errno.EINVAL, portId, "boom", 20);
                return [w.ToArray()];
            default:
                return [];
        }
    }

    [Fact]
    public async Task SocketCallsBehaveAsNetlink()
    {
        RepoPaths.BuildInterposer();
        var make = ProcessRunner.Run("make", ["-s", "-C", RepoPaths.NftablesDir, "build/probe"]);
        Assert.True(make.Exit == 0, make.Stderr);
        using var dir = new TempSocketDir();
        var endpoint = new ScriptedEndpoint(Answer);
        await using var server = new DaemonServer(endpoint, dir.Socket());
        server.Start();
        var r = ProcessRunner.Run(Path.Combine(RepoPaths.NftablesDir, "build", "probe"), [],
            env: new Dictionary<string, string> { ["LD_PRELOAD"] = RepoPaths.Library, ["BFNFT_SOCKET"] = server.SocketPath });
        Assert.True(r.Exit == 0, r.Stdout + r.Stderr);
        string[] expected =
        [
            "socket=ok",
            "portid_unbound=0",
            "ext_ack_set=0",
            "ext_ack_get=1",
            "so_protocol=12",
            "readable_empty=0",
            "recv_empty=-1 errno=EAGAIN",
            "sendto=16",
            "portid_is_pid=1",
            "readable_queued=1",
            "split=60 namelen=12 family=16 nl_pid=0 groups=0 flags=0 first_len=20 first_pid_is_portid=1",
            "trunc=40 flags_trunc=1",
            "peek=100 readable_after_peek=1",
            "scatter=100 second_part_byte=171 namelen=0",
            "readable_drained=0",
            "recv_drained=-1 errno=EAGAIN",
            "msg_trunc_len=120",
            "after_trunc=100",
            "sendmsg=32",
            "sendmsg_datagrams=2",
            "write=16 read=120",
            "writev=16 readv=120",
            "recvmmsg=1 len=100",
            "noext=60 len=60 flags=0x0",
            "capped=56 len=56 flags=0x300",
            "full=80 len=80 flags=0x200",
            "route_protocol=0",
            "second_portid_distinct=1 second_portid_negative=1",
            "blocking_recv=120",
            "read_during_close=-1",
            "write_after_close=1",
        ];
        Assert.Equal(expected, r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        // Every send was one request: 2 x sendto 0x100, sendmsg (one batch of two), write, writev, 3 x 0x101, second socket.
        Assert.Equal(9, endpoint.Calls);
        Assert.Contains(endpoint.Seen, s => s.Request.Length == 32);
    }
}
