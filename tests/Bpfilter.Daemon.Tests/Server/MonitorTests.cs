using System.Diagnostics;
using Bpfilter.Daemon.Server;

namespace Bpfilter.Daemon.Tests.Server;

/// <summary>nft monitor through bfnft: subscription, delivery to every subscriber, bounded queues, privilege.</summary>
public class MonitorTests
{
    [Fact]
    public void MonitorSeesCommitsOfOtherClients()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess();
        using var a = d.Ns.Start(RepoPaths.Bfnft, ["-a", "monitor"], d.Env);
        using var b = d.Ns.Start(RepoPaths.Bfnft, ["monitor", "new", "tables"], d.Env);
        WaitFor(() => CountSubscriptions(d.Log) >= 2, $"monitors did not subscribe (exited: {a.HasExited} {b.HasExited})\n{a.Stdout}{a.Stderr}{b.Stderr}{d.Log}");
        Assert.Equal(0, d.Bfnft(["add", "table", "ip", "t"]).Exit);
        Assert.Equal(0, d.Bfnft(["add", "chain", "ip", "t", "c"]).Exit);
        Assert.Equal(0, d.Bfnft(["delete", "table", "ip", "t"]).Exit);
        WaitFor(() => a.Stdout.Contains("delete table ip t"), "no events\n" + a.Stdout + a.Stderr + d.Log);
        Thread.Sleep(200);
        var ra = a.Stop();
        var rb = b.Stop();
        Assert.Matches(@"^add table ip t # handle 1\n# new generation 2 by process \d+ \(nft\)\nadd chain ip t c # handle 1\n" +
            @"# new generation 3 by process \d+ \(nft\)\ndelete chain ip t c\ndelete table ip t # handle 1\n# new generation 4 by process \d+ \(nft\)\n$", ra.Stdout);
        Assert.Equal("add table ip t\n", rb.Stdout);
    }

    [Fact]
    public void APeerWithoutNetAdminGetsNoEvents()
    {
        RepoPaths.BuildInterposer();
        using var d = new DaemonProcess("0666");
        // nft fails with EPERM at its first request; the daemon would refuse its GROUPS request too
        // (netlink_bind refuses netfilter groups without CAP_NET_ADMIN).
        var r = d.Bfnft(["monitor"], setpriv: ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps", "-all"]);
        Assert.NotEqual(0, r.Exit);
        Assert.Equal(0, CountSubscriptions(d.Log));
    }

    [Fact]
    public void ASubscriberThatDoesNotReadLosesEventsAndNeverBlocks()
    {
        var q = new ReplyQueue(new ServerLimits { MaxQueuedReplyBytes = 100, MaxQueuedReplies = 8 });
        Assert.True(q.AddEvent([new byte[60]]));
        Assert.False(q.AddEvent([new byte[60]])); // over the byte bound: dropped, one ENOBUFS frame queued
        Assert.False(q.AddEvent([new byte[60]])); // dropped again: no second marker
        var first = q.TakeAsync(CancellationToken.None).Result!;
        Assert.Single(first);
        q.Written();
        var marker = q.TakeAsync(CancellationToken.None).Result!;
        Assert.Empty(marker);
        q.Written();
        Assert.True(q.AddEvent([new byte[60]])); // drained: events flow again
    }

    /// <summary>Subscriptions the daemon logged that include NFNLGRP_NFTABLES (nft monitor also asks for the trace group).</summary>
    [Fact]
    public async Task ASubscriberPastItsReceiveBufferGetsEnobufsThenEventsAgain()
    {
        RepoPaths.BuildInterposer();
        var make = ProcessRunner.Run("make", ["-s", "-C", RepoPaths.NftablesDir, "build/events"]);
        Assert.True(make.Exit == 0, make.Stderr);
        using var dir = new TempSocketDir();
        var log = new System.Text.StringBuilder();
        await using var server = new DaemonServer(new EngineEndpoint(new Nft.Engine.NfTablesEndpoint()), dir.Socket(),
            log: m => { lock (log) log.AppendLine(m); });
        server.Start();
        var env = new Dictionary<string, string> { ["LD_PRELOAD"] = RepoPaths.Library, ["BFNFT_SOCKET"] = server.SocketPath };
        using var sub = BackgroundProcess.Start("env", [.. env.Select(kv => $"{kv.Key}={kv.Value}"), Path.Combine(RepoPaths.NftablesDir, "build", "events"), "4096"]);
        WaitFor(() => sub.Stdout.Contains("subscribed"), "no subscription: " + sub.Stdout + sub.Stderr);
        Assert.Contains("subscribed groups=0x40", sub.Stdout);
        // ~400 NEWSETELEM notifications: far more than the 8 KiB receive buffer (SO_RCVBUF doubled).
        var elements = string.Join(", ", Enumerable.Range(0, 400).Select(i => $"10.0.{i / 250}.{i % 250}"));
        var add = ProcessRunner.Run(RepoPaths.Bfnft, ["-f", "-"], $"add table ip t\nadd set ip t s {{ type ipv4_addr; }}\nadd element ip t s {{ {elements} }}\n", env: env);
        Assert.True(add.Exit == 0, add.ToString());
        ProcessRunner.Run("kill", ["-USR1", sub.Pid.ToString()]);
        WaitFor(() => sub.Stdout.Contains("enobufs="), "no drain: " + sub.Stdout + sub.Stderr);
        var m = System.Text.RegularExpressions.Regex.Match(sub.Stdout, @"messages=(\d+) enobufs=(\d+)");
        int messages = int.Parse(m.Groups[1].Value), enobufs = int.Parse(m.Groups[2].Value);
        Assert.True(enobufs == 1 && messages > 0 && messages < 403, sub.Stdout);
        Assert.Equal(0, ProcessRunner.Run(RepoPaths.Bfnft, ["add", "table", "ip", "u"], env: env).Exit);
        WaitFor(() => sub.Stdout.Contains("next="), "no next event: " + sub.Stdout + sub.Stderr);
        Assert.Contains("next=0xa00", sub.Stdout); // NEWTABLE: delivery resumed after the loss
    }

    internal static int CountSubscriptions(string log) =>
        System.Text.RegularExpressions.Regex.Matches(log, "event groups 0x([0-9a-f]+)")
            .Count(m => (Convert.ToUInt32(m.Groups[1].Value, 16) & 0x40) != 0);

    static void WaitFor(Func<bool> done, string why)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(20)) throw new TimeoutException(why);
            Thread.Sleep(50);
        }
    }
}
