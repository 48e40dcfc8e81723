namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A chain the kernel's nf_tables runs (a rule BPF cannot run: `log group` at a netdev hook, `reject` at an ip one) with a
/// meter and a named set its packet path writes (`add @s`), across a SIGKILL of bpfilterd and a restart that adopts the
/// kernel's table as it runs, compared with the kernel, where nothing restarts. Since branch `meterback` a meter's set
/// goes to the kernel by the meter's name, so the table adopted holds a meter. Meanwhile datagrams to a port the chain
/// drops are sent without pause: none may arrive (the table keeps running, no commit opens a window). After the
/// restart the meter and the set list the kernel's elements, and a commit that moves the chain back to BPF carries them.
/// Every packet is 29 bytes.
/// </summary>
public sealed class KernelHeldMeterRestartTrafficTests
{
    const int DroppedPort = 17, AcceptedPort = 18;

    static string Ruleset(string family, string hook) => $$"""
        table {{family}} t {
            set s {
                type ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 30m
            }
            chain in {
                type filter hook {{hook}} priority 0; policy accept;
                udp dport 13 meter m size 8 { ip daddr counter }
                udp dport 15 meter mt size 8 { ip daddr timeout 30m counter }
                udp dport 16 add @s { ip daddr }
                udp dport {{DroppedPort}} drop
            }
        }
        """;

    /// <summary>The meters and the set, each listed alike on both sides.</summary>
    static (string M, string Mt, string S) Same(PacketPathSetTrafficTests.Sides s, string family) =>
        (s.SameListing($"meter {family} t m"), s.SameListing($"meter {family} t mt"), s.SameListing($"set {family} t s"));

    [Theory]
    [MemberData(nameof(MeterMoveTrafficTests.Placements), MemberType = typeof(MeterMoveTrafficTests))]
    public void AKernelHeldMeterAndSetKeepTheirElementsAcrossAKillAndMoveBackWithThem(
        string family, string hook, string toKernel, string listed, bool movesBack)
    {
        using var pins = new PersistenceTests.PinFs();
        using var s = new PacketPathSetTrafficTests.Sides("auto", pins.Path);
        // elements made by BPF's packet path first, carried to the kernel by the move, then the kernel's own
        s.Apply(Ruleset(family, hook));
        Assert.Contains($"table {family} t chain in: BPF", s.Rig.Explain());
        s.Send(13, "127.0.0.2", "127.0.0.3");
        s.Send(15, "127.0.0.2");
        s.Send(16, "127.0.0.5");
        s.Apply($"add rule {family} t in {toKernel}");
        Assert.Contains($"table {family} t chain in: kernel nf_tables", s.Rig.Explain());
        s.Send(13, "127.0.0.2");
        s.Send(15, "127.0.0.3");
        s.Send(16, "127.0.0.6");
        var (m, _, set) = Same(s, family);
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", m);
        Assert.Contains("127.0.0.6 expires", set);

        // the probe sees what is not dropped: it would see a window
        using (var open = new DroppedPortProbe(s.Rig.Daemon.Ns, "127.0.0.2", AcceptedPort))
        {
            Thread.Sleep(300);
            var (sent, arrived) = open.Stop();
            Assert.True(arrived > 0 && sent > 0, $"sent {sent}, arrived {arrived}");
        }

        using (var probe = new DroppedPortProbe(s.Rig.Daemon.Ns, "127.0.0.2", DroppedPort))
        {
            s.Rig.Daemon.Kill();
            Thread.Sleep(200);
            s.Rig.Daemon.Restart();
            Assert.Contains("restart: adopted 1 kernel nf_tables table(s) as they run", s.Rig.Daemon.Log);
            Assert.Contains($"table {family} t chain in: kernel nf_tables", s.Rig.Explain());
            (m, var mt, set) = Same(s, family);
            Assert.Contains("127.0.0.2 counter packets 2 bytes 58", m);
            Assert.Contains("127.0.0.3 counter packets 1 bytes 29", m);
            Assert.Contains("127.0.0.3 counter packets 1 bytes 29 timeout 30m expires", mt);
            Assert.Contains("127.0.0.5 expires", set);
            s.SameListing("ruleset");
            // a commit after the restart (another table) replaces nothing the kernel runs
            s.Apply("table ip other {\n chain c {\n type filter hook input priority 5; policy accept;\n }\n}");
            Same(s, family);
            var (sent, arrived) = probe.Stop();
            Assert.True(sent > 0, "the probe sent nothing");
            Assert.True(arrived == 0, $"{arrived} of {sent} datagrams to the dropped port {DroppedPort} got through\n{s.Rig.Daemon.Log}");
        }

        // the kernel's packet path goes on with the adopted meter and set
        s.Send(13, "127.0.0.2");
        s.Send(16, "127.0.0.7");
        (m, _, set) = Same(s, family);
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87", m);
        Assert.Contains("127.0.0.7 expires", set);

        // back to BPF: the elements go along, and BPF's packet path goes on from them
        s.Apply($"delete rule {family} t in handle {PlacementMoveCounterTrafficTests.Handle(s, listed, family)}");
        if (movesBack)
        {
            var explain = s.Rig.Explain();
            Assert.True(explain.Contains($"table {family} t chain in: BPF"), explain + s.Rig.Daemon.Log);
        }
        (m, var back, set) = Same(s, family);
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87", m);
        Assert.Contains("127.0.0.3 counter packets 1 bytes 29", m);
        Assert.Contains("127.0.0.2 counter packets 1 bytes 29 timeout 30m expires", back);
        foreach (var a in new[] { "127.0.0.5", "127.0.0.6", "127.0.0.7" }) Assert.Contains(a + " expires", set);
        s.Send(13, "127.0.0.3");
        s.Send(15, "127.0.0.3");
        s.Send(16, "127.0.0.8");
        (m, back, set) = Same(s, family);
        Assert.Contains("127.0.0.3 counter packets 2 bytes 58", m);
        Assert.Contains("127.0.0.3 counter packets 2 bytes 58 timeout 30m expires", back);
        Assert.Contains("127.0.0.8 expires", set);
        s.SameListing("ruleset");
    }
}
