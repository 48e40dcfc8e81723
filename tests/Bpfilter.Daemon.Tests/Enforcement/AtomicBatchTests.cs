using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A batch of element changes is seen by packets all at once, under a real flood. The peer sends UDP
/// from two addresses, A and B, alternately, each datagram numbered; the firewall drops `ip saddr !=
/// @allowed`, and batches swap which of A and B is allowed (delete one, add the other, plus a few hundred
/// new filler elements after the add, which keep a partial batch visible long enough to be caught).
/// In the sequence of sent datagrams a consistent firewall passes every other one, and at a switch at most
/// two neighbours pass; three passing in a row mean that for a while both A and B were allowed: a packet
/// saw part of a batch. Lost datagrams only count as dropped, so loss cannot fake that.
/// </summary>
public class AtomicBatchTests
{
    const string A = "198.18.7.2", B = "198.18.7.3";
    const int Port = 9941, Swaps = 30, FillersPerSwap = 300, InitialFillers = 10_000;

    static string Filler(int i) => $"198.{20 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}";

    static string Elements(IEnumerable<int> fillers) => string.Join(", ", fillers.Select(Filler));

    /// <summary>XDP (netdev ingress) and a netfilter hook (inet input: the ipv4 and ipv6 programs both hold the set).</summary>
    [Theory]
    [InlineData("netdev", "type filter hook ingress device DEV priority 0;")]
    [InlineData("inet", "type filter hook input priority 0;")]
    public void AFloodNeverSeesBothSourcesAllowed(string family, string hook)
    {
        using var rig = new EnforcementRig();
        rig.Peer.Ip("addr", "add", B + "/24", "dev", rig.PeerDev);
        rig.Nft($$"""
            table {{family}} t {
              set allowed { type ipv4_addr; elements = { {{A}}, {{Elements(Enumerable.Range(0, InitialFillers))}} } }
              chain c { {{hook.Replace("DEV", rig.FwDev)}} ip saddr != @allowed drop; }
            }
            """);
        using var receiver = rig.Daemon.Ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 8 << 20 };
            s.Bind(new IPEndPoint(IPAddress.Parse(EnforcementRig.FwAddr), Port));
            return s;
        });
        Socket Sender(string from) => rig.Peer.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Parse(from), 0));
            s.Connect(new IPEndPoint(IPAddress.Parse(EnforcementRig.FwAddr), Port));
            return s;
        });
        using var fromA = Sender(A);
        using var fromB = Sender(B);

        var passed = new List<long>();
        using var stop = new CancellationTokenSource();
        long sent = 0;
        var receive = new Thread(() =>
        {
            var buf = new byte[64];
            receiver.ReceiveTimeout = 200;
            while (true)
            {
                try
                {
                    if (receiver.Receive(buf) >= 8) lock (passed) passed.Add(BinaryPrimitives.ReadInt64LittleEndian(buf));
                }
                catch (SocketException)
                {
                    if (stop.IsCancellationRequested) return;
                }
            }
        });
        var send = new Thread(() =>
        {
            var buf = new byte[8];
            for (long n = 0; !stop.IsCancellationRequested; n += 2)
            {
                // the datagram's number in the sent sequence: even from A, odd from B
                BinaryPrimitives.WriteInt64LittleEndian(buf, n);
                fromA.Send(buf);
                BinaryPrimitives.WriteInt64LittleEndian(buf, n + 1);
                fromB.Send(buf);
                Interlocked.Exchange(ref sent, n + 2);
                if (n % 128 == 0) Thread.Yield();
            }
        });
        receive.Start();
        send.Start();
        try
        {
            Thread.Sleep(300);
            var next = InitialFillers;
            for (var i = 0; i < Swaps; i++)
            {
                var (allow, deny) = i % 2 == 0 ? (B, A) : (A, B);
                var fillers = Elements(Enumerable.Range(next, FillersPerSwap));
                next += FillersPerSwap;
                rig.Nft($$"""
                    delete element {{family}} t allowed { {{deny}} }
                    add element {{family}} t allowed { {{allow}}, {{fillers}} }
                    """);
            }
            Thread.Sleep(300);
        }
        finally
        {
            stop.Cancel();
            send.Join();
            receive.Join();
        }

        var total = Interlocked.Read(ref sent);
        var through = new bool[total];
        lock (passed)
            foreach (var n in passed)
                if (n >= 0 && n < total) through[n] = true;
        var (fromASeen, fromBSeen) = (passed.Count(n => n % 2 == 0), passed.Count(n => n % 2 == 1));
        var summary = $"{total} sent, {passed.Count} passed ({fromASeen} from A, {fromBSeen} from B)";
        // every batch took the element-only path (no program reload hides a partial batch)
        Assert.True(rig.Daemon.Log.Split('\n').Count(l => l.Contains("committed elements only")) >= Swaps, rig.Daemon.Log);
        Assert.True(fromASeen > 0 && fromBSeen > 0, summary);
        long run = 0, worst = 0, at = -1;
        for (long n = 0; n < total; n++)
        {
            run = through[n] ? run + 1 : 0;
            if (run > worst) (worst, at) = (run, n);
        }
        Assert.True(worst <= 2, $"{worst} datagrams in a row passed, up to #{at}: A and B were both allowed, a packet saw part of a batch; {summary}");
    }
}
