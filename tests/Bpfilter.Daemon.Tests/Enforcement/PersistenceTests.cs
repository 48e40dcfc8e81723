using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Fail closed: filtering outlives bpfilterd (pinned attach points, kernel-placed tables) and a restart
/// restores the committed ruleset exactly (handles included), taking over the same programs and counters.
/// Each test mounts its own bpf file system for the pins (unmounted at the end, which detaches whatever is
/// still pinned) and keeps the state in the daemon's private directory.
/// </summary>
public sealed partial class PersistenceTests
{
    /// <summary>A bpf file system on a temp directory of the test's mount namespace, visible to the daemon under ip netns exec.</summary>
    internal sealed class PinFs : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine("/tmp", "bpfd-pins-" + Guid.NewGuid().ToString("N")[..12]);

        public PinFs()
        {
            Directory.CreateDirectory(Path);
            ProcessRunner.Check("mount", "-t", "bpf", "bpf", Path);
        }

        public void Dispose()
        {
            try
            {
                ProcessRunner.Check("umount", "-l", Path);
                Directory.Delete(Path);
            }
            catch (Exception) { /* cleanup goes on */ }
        }
    }

    /// <summary>XDP (netdev ingress), BPF_NETFILTER (ip input) and a kernel-placed chain (ct helper), each dropping one port of <paramref name="proto"/>.</summary>
    static string Ruleset(string dev, string proto = "tcp") => $$"""
        table netdev x {
            chain ing {
                type filter hook ingress device "{{dev}}" priority 0; policy accept;
                {{proto}} dport 85 counter drop
            }
        }
        table ip f {
            chain in {
                type filter hook input priority 10; policy accept;
                {{proto}} dport 83 counter drop
            }
        }
        table inet t {
            chain in {
                type filter hook input priority 0; policy accept;
                ct helper "ftp" drop
                {{proto}} dport 81 counter drop
            }
        }
        """;

    static readonly int[] DroppedPorts = [81, 83, 85];

    [GeneratedRegex(@"(tcp|udp) dport (\d+) counter packets (\d+) bytes (\d+)")]
    private static partial Regex CounterLine();

    static Dictionary<int, ulong> Counters(string listing) =>
        CounterLine().Matches(listing).ToDictionary(m => int.Parse(m.Groups[2].Value), m => ulong.Parse(m.Groups[3].Value));

    static string WithoutCounters(string listing) => CounterLine().Replace(listing, m => $"{m.Groups[1].Value} dport {m.Groups[2].Value} counter");

    static string ListWithHandles(EnforcementRig rig)
    {
        var r = rig.Daemon.Bfnft(["-a", "list", "ruleset"]);
        Assert.True(r.Exit == 0, $"nft -a list ruleset: {r.Stderr}\n{rig.Daemon.Log}");
        return r.Stdout;
    }

    /// <summary>A SYN from the peer goes unanswered (dropped) within 1.5 s; a closed port answers with a reset at once.</summary>
    static bool Dropped(EnforcementRig rig, int port)
    {
        var r = rig.Peer.Exec("timeout", ["1.5", "bash", "-c", $"exec 3<>/dev/tcp/{EnforcementRig.FwAddr}/{port}"]);
        if (r.Exit == 124) return true;
        if (r.Exit == 1 && r.Stderr.Contains("refused")) return false;
        throw new InvalidOperationException($"probe to port {port}: exit {r.Exit}: {r.Stderr}");
    }

    /// <summary>Probes the ports at once (a drop costs the whole timeout): the ports that went unanswered.</summary>
    static int[] DroppedOf(EnforcementRig rig, params int[] ports)
    {
        var probes = ports.Select(p => Task.Run(() => (Port: p, Dropped: Dropped(rig, p)))).ToArray();
        Task.WaitAll(probes);
        return probes.Where(t => t.Result.Dropped).Select(t => t.Result.Port).Order().ToArray();
    }

    static string StateFile(EnforcementRig rig) =>
        Directory.GetFiles(rig.Daemon.Dir.Path, "*.state").Single();

    [Fact]
    public void FilteringOutlivesTheDaemonAndARestartRestoresTheSameRulesetProgramsAndCounters()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft(Ruleset(rig.FwDev));
        Assert.Equal(DroppedPorts, DroppedOf(rig, [.. DroppedPorts, 82]));
        // a new rule replaces the netfilter program: what the old one counted is carried (and must survive restarts)
        rig.Nft("add rule ip f in tcp dport 86 counter drop");

        var listing = ListWithHandles(rig);
        var programs = rig.ProgramIds();
        Assert.Equal(2, programs.Count); // XDP and netfilter
        Assert.Contains("table inet t", rig.KernelRuleset());
        var counters = Counters(listing);
        foreach (var port in DroppedPorts) Assert.True(counters[port] >= 1, listing);

        for (int round = 0; round < 5; round++)
        {
            // SIGKILL gives the daemon no chance to do anything; SIGTERM is the clean shutdown: neither detaches
            if (round % 2 == 0) rig.Daemon.Kill();
            else Assert.Equal(0, rig.Daemon.Terminate());
            Assert.True(DroppedPorts.SequenceEqual(DroppedOf(rig, [.. DroppedPorts, 82])),
                $"round {round}: while bpfilterd was not running, the ports dropped were not {string.Join(", ", DroppedPorts)}\n{rig.Daemon.Log}");

            rig.Daemon.Restart();
            var now = ListWithHandles(rig);
            Assert.Equal(WithoutCounters(listing), WithoutCounters(now));
            Assert.Equal(programs, rig.ProgramIds());
            var after = Counters(now);
            foreach (var port in DroppedPorts)
                Assert.True(after[port] > counters[port],
                    $"round {round}: port {port} counted {after[port]} after the restart, {counters[port]} before, and a packet was dropped meanwhile\n{now}");
            counters = after;
            Assert.Contains("table inet t", rig.KernelRuleset());
            Assert.DoesNotContain("table ip f", rig.KernelRuleset());
        }
        Assert.Contains("restored 3 table(s)", rig.Daemon.Log);
        Assert.Contains("with their running program", rig.Daemon.Log);

        // the next commit after a restart goes on from the restored handles, and removing a chain detaches it
        rig.Nft("delete table ip f");
        Assert.False(Dropped(rig, 83));
        Assert.DoesNotContain("table ip f", ListWithHandles(rig));
        Assert.Single(rig.ProgramIds());
        rig.Nft("add table ip g");
        var handle = Regex.Match(ListWithHandles(rig), @"table ip g \{ # handle (\d+)");
        Assert.True(handle.Success, ListWithHandles(rig));
        Assert.Equal(4, int.Parse(handle.Groups[1].Value)); // tables x, f, t had 1..3
        var rule = Regex.Match(ListWithHandles(rig), @"tcp dport 85 counter packets \d+ bytes \d+ drop # handle (\d+)");
        rig.Nft("add rule netdev x ing tcp dport 87 drop");
        Assert.Matches($@"tcp dport 87 drop # handle {ulong.Parse(rule.Groups[1].Value) + 1}\b", ListWithHandles(rig));
    }

    [Fact]
    public void ACorruptStateFileIsMovedAsideAndWhatRanKeepsEnforcingUntilTheFirstCommit()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft(Ruleset(rig.FwDev));
        Assert.Equal(DroppedPorts, DroppedOf(rig, DroppedPorts));
        rig.Daemon.Kill();
        var state = StateFile(rig);
        var bytes = File.ReadAllBytes(state);
        File.WriteAllBytes(state, bytes[..(bytes.Length / 2)]);

        rig.Daemon.Restart();
        rig.Daemon.WaitForLog($"moved aside to {state}.corrupt", TimeSpan.FromSeconds(10));
        Assert.Matches($@"state file {Regex.Escape(state)} is corrupt \(.*truncated.*\); moved aside to {Regex.Escape(state)}\.corrupt", rig.Daemon.Log);
        Assert.True(File.Exists(state + ".corrupt"));
        Assert.Equal(bytes.Length / 2, new FileInfo(state + ".corrupt").Length);
        Assert.False(File.Exists(state));
        // nft sees an empty ruleset, but what the previous run enforced keeps enforcing
        Assert.DoesNotContain("table", ListWithHandles(rig));
        Assert.True(DroppedPorts.SequenceEqual(DroppedOf(rig, [.. DroppedPorts, 82])), $"after a restart on a corrupt state\n{rig.Daemon.Log}");
        Assert.Contains("table inet t", rig.KernelRuleset());

        // the first commit replaces all of it (kernel tables in the same kernel transaction, pinned links unpinned)
        rig.Nft("""
            table ip other {
                chain in {
                    type filter hook input priority 10; policy accept;
                    tcp dport 84 drop
                }
            }
            """);
        Assert.True(DroppedOf(rig, [.. DroppedPorts, 84]).SequenceEqual([84]), $"after the first commit\n{rig.Daemon.Log}");
        Assert.DoesNotContain("table inet t", rig.KernelRuleset());
        Assert.Single(rig.ProgramIds());
        Assert.True(File.Exists(state));
        Assert.Single(Directory.GetDirectories(Directory.GetDirectories(pins.Path).Single()));
    }

    [Fact]
    public void AStateFileOfAnotherNamespaceWithTheSameInodeIsNotRestored()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft("table ip f { chain in { type filter hook input priority 10; policy accept; tcp dport 83 drop; }; }");
        rig.Daemon.Kill();
        var state = StateFile(rig);
        var bytes = File.ReadAllBytes(state);
        bytes[0] ^= 0xff; // the first 8 bytes are the namespace cookie
        File.WriteAllBytes(state, bytes);

        rig.Daemon.Restart();
        Assert.True(rig.Daemon.WaitForLog($"state file {state} belongs to an earlier namespace that had this inode; moved aside to {state}.stale",
            TimeSpan.FromSeconds(10)), rig.Daemon.Log);
        Assert.True(File.Exists(state + ".stale"));
        Assert.DoesNotContain("table", ListWithHandles(rig));
        Assert.True(Dropped(rig, 83)); // the pinned program keeps enforcing until the first commit
        rig.Nft("add table ip g");
        Assert.False(Dropped(rig, 83));
        Assert.Empty(Directory.GetDirectories(Directory.GetDirectories(pins.Path).Single()));
    }

    /// <summary>A background python3 in a namespace, its output collected; killed on dispose.</summary>
    sealed class Background : IDisposable
    {
        readonly System.Diagnostics.Process _p;
        readonly System.Text.StringBuilder _out = new();

        public Background(NetNs ns, string script)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { "netns", "exec", ns.Name, "python3", "-u", "-c", script }) psi.ArgumentList.Add(a);
            _p = System.Diagnostics.Process.Start(psi)!;
            _p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (_out) _out.AppendLine(e.Data); };
            _p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_out) _out.AppendLine(e.Data); };
            _p.BeginOutputReadLine();
            _p.BeginErrorReadLine();
        }

        public string Output { get { lock (_out) return _out.ToString(); } }

        public void Dispose()
        {
            try { _p.Kill(entireProcessTree: true); _p.WaitForExit(5000); } catch (Exception) { }
            _p.Dispose();
        }
    }

    [Fact]
    public void UnderAFloodNoDroppedPacketGetsThroughTwentyKillsAndRestarts()
    {
        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path);
        rig.Nft(Ruleset(rig.FwDev, "udp"));
        // and tcx: a netdev egress chain on the firewall's device, against a flood the firewall sends
        rig.Nft($"table netdev e {{ chain out {{ type filter hook egress device \"{rig.FwDev}\" priority 0; policy accept; udp dport 86 counter drop; }}; }}");
        var listing = ListWithHandles(rig);
        var programs = rig.ProgramIds();
        using var peerListener = new Background(rig.Peer, Listener(86, 89));
        using var outbound = new Background(rig.Daemon.Ns, Flood(EnforcementRig.PeerAddr, 86, 89));
        // the firewall's stack reports every datagram it receives; 88 is not dropped and shows the flood arrives
        using var listener = new Background(rig.Daemon.Ns, Listener(81, 83, 85, 88));
        var ready = System.Diagnostics.Stopwatch.StartNew();
        while (!listener.Output.Contains("ready") && ready.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(20);
        Assert.Contains("ready", listener.Output);
        using var flood = new Background(rig.Peer, Flood(EnforcementRig.FwAddr, 81, 83, 85, 88));
        for (int round = 0; round < 20; round++)
        {
            if (round % 4 == 3) Assert.Equal(0, rig.Daemon.Terminate());
            else rig.Daemon.Kill();
            rig.Daemon.Restart();
            if (round % 5 == 4)
            {
                Assert.Equal(WithoutCounters(listing), WithoutCounters(ListWithHandles(rig)));
                Assert.Equal(programs, rig.ProgramIds());
            }
        }
        var counters = Counters(ListWithHandles(rig));
        var got = listener.Output;
        Assert.Contains("got 88", got); // the flood reached the firewall
        foreach (var port in DroppedPorts)
        {
            Assert.DoesNotContain($"got {port} ", got);
            Assert.True(counters[port] > 100, $"port {port} counted only {counters[port]}: the flood did not run");
        }
        var sent = peerListener.Output;
        Assert.Contains("got 89", sent); // the firewall's own flood left through tcx egress
        Assert.DoesNotContain("got 86 ", sent);
        Assert.True(counters[86] > 100, $"port 86 (tcx egress) counted only {counters[86]}: the flood did not run");
    }

    /// <summary>A python3 script that binds UDP ports and prints "got PORT N" at the first datagram and every 1000th.</summary>
    static string Listener(params int[] ports) => $$"""
        import socket, select
        socks = []
        for p in ({{string.Join(", ", ports)}},):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", p)); socks.append(s)
        print("ready")
        seen = {}
        while True:
            for s in select.select(socks, [], [])[0]:
                s.recv(64); p = s.getsockname()[1]; seen[p] = seen.get(p, 0) + 1
                if seen[p] == 1 or seen[p] % 1000 == 0: print("got", p, seen[p])
        """;

    /// <summary>A python3 script that sends 32-byte datagrams to each port in turn, about 1000 rounds a second.</summary>
    static string Flood(string address, params int[] ports) => $$"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        n = 0
        while True:
            for p in ({{string.Join(", ", ports)}},):
                try: s.sendto(b"x" * 32, ("{{address}}", p))
                except OSError: pass
            n += 1
            if n % 4 == 0: time.sleep(0.001)
        """;
}
