namespace Bpfilter.Daemon.Tests.Enforcement;

public sealed partial class PersistenceTests
{
    /// <summary>
    /// An anonymous quota, a named quota and a limit in BPF, each with a counter on what passes and on what does not.
    /// 29-byte packets (20 IP + 8 UDP + 1): the quota of 290 bytes lets 10 through, the named one of
    /// 150 bytes 5; the bucket holds 3 and refills one per hour: nothing while the test runs (with one per minute, a run
    /// stretched past a minute by a loaded machine refilled a token on one side between the two sides' bursts).
    /// </summary>
    const string Stateful = """
        table ip t {
            quota q {
                until 150 bytes
            }
            chain in {
                type filter hook input priority 0; policy accept;
                udp dport 9 quota until 290 bytes counter accept
                udp dport 9 counter drop
                udp dport 10 limit rate 1/hour burst 3 packets counter accept
                udp dport 10 counter drop
                udp dport 11 quota name "q" counter accept
                udp dport 11 counter drop
            }
        }
        """;

    static string Burst(string addr, int packets) =>
        $"for i in $(seq {packets}); do for p in 9 10 11; do printf x > /dev/udp/{addr}/$p; done; done";

    /// <summary>
    /// Quota consumption and limit buckets go on through kills and restarts exactly as if there had been none:
    /// the kernel, sent the same packets without a restart, is the oracle after every round (`used`, counts and
    /// what was dropped), and a restarted daemon lists the same `used` as before the kill.
    /// </summary>
    [Fact]
    public void QuotasAndLimitBucketsContinueThroughRestarts()
    {
        using var kernel = new NetNs();
        kernel.Ip("link", "set", "lo", "up");
        var load = kernel.Exec("nft", ["-f", "-"], Stateful);
        Assert.True(load.Exit == 0, load.Stderr);

        using var pins = new PinFs();
        using var rig = new EnforcementRig("--pin-dir", pins.Path, "--placement", "bpf-only");
        rig.Nft(Stateful);
        Assert.Contains("table ip t chain in: BPF", rig.Explain());
        var programs = rig.ProgramIds();

        for (int round = 0; round < 4; round++)
        {
            var sent = kernel.Exec("bash", ["-c", Burst("127.0.0.1", 3)]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            var expected = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
            sent = rig.Peer.Exec("bash", ["-c", Burst(EnforcementRig.FwAddr, 3)]);
            Assert.True(sent.Exit == 0, sent.Stderr);
            if (round == 1)
            {
                // a reset takes the named quota's consumption back: the restarted daemon goes on from there
                var reset = kernel.Exec("nft", ["reset", "quota", "ip", "t", "q"]);
                Assert.True(reset.Exit == 0, reset.Stderr);
                reset = rig.Daemon.Bfnft(["reset", "quota", "ip", "t", "q"]);
                Assert.True(reset.Exit == 0, reset.Stderr);
                expected = kernel.Exec("nft", ["list", "ruleset"]).Stdout;
            }
            var before = rig.ListRuleset();
            Assert.True(expected == before, $"round {round}: the kernel lists\n{expected}\nbpfilterd lists\n{before}\n{rig.Daemon.Log}");

            if (round % 2 == 0) rig.Daemon.Kill();
            else Assert.Equal(0, rig.Daemon.Terminate());
            rig.Daemon.Restart();
            var after = rig.ListRuleset();
            Assert.True(before == after, $"round {round}: before the restart\n{before}\nafter it\n{after}\n{rig.Daemon.Log}");
            Assert.Equal(programs, rig.ProgramIds());
        }
        Assert.Contains("reopened the pinned quotas map", rig.Daemon.Log);
        Assert.Contains("reopened the pinned limits map", rig.Daemon.Log);
        // after 12 packets each: the quota let 10 through, the named one 5 + 5 (reset after 6), the bucket 3
        var final = rig.ListRuleset();
        Assert.Contains("udp dport 9 counter packets 2 bytes 58 drop", final);
        Assert.Contains("udp dport 10 counter packets 9 bytes 261 drop", final);
        Assert.Contains("udp dport 11 counter packets 2 bytes 58 drop", final);

        // a commit after the restarts loads a new program against the same shared maps: the state still goes on
        rig.Nft("add rule ip t in udp dport 12 counter accept");
        Assert.NotEqual(programs, rig.ProgramIds());
        var sentAgain = rig.Peer.Exec("bash", ["-c", Burst(EnforcementRig.FwAddr, 1)]);
        Assert.True(sentAgain.Exit == 0, sentAgain.Stderr);
        var last = rig.ListRuleset();
        Assert.Contains("udp dport 9 counter packets 3 bytes 87 drop", last);
        Assert.Contains("udp dport 10 counter packets 10 bytes 290 drop", last);
        Assert.Contains("udp dport 11 counter packets 3 bytes 87 drop", last);
    }
}
