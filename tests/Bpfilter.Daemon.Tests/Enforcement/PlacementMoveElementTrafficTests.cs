namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// A set whose elements carry a counter and a quota, read by a chain that a commit moves between BPF and the kernel's
/// nf_tables, compared with the kernel (6.18), where nothing moves: each element keeps what it counted and consumed.
/// Every packet is 29 bytes at lo's ingress (IPv4 20, UDP 8, one byte).
/// </summary>
public sealed class PlacementMoveElementTrafficTests
{
    const string Netdev = """
        table netdev t {
            set s {
                type ipv4_addr
                counter quota 100000 bytes
                elements = { 127.0.0.2, 127.0.0.3 }
            }
            set c {
                type ipv4_addr
                counter
                elements = { 127.0.0.2, 127.0.0.3 counter packets 5 bytes 500 }
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 12 ip daddr @s
                udp dport 12 ip daddr @c
            }
        }
        """;

    public static TheoryData<string, string?> Moves => PlacementMoveCounterTrafficTests.Moves;

    /// <summary>To the kernel, the elements go with what BPF counted and consumed; back in BPF, with what the kernel did.</summary>
    [Theory]
    [MemberData(nameof(Moves))]
    public void ElementCountersAndQuotasSurviveAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = PlacementMoveCounterTrafficTests.InBpf(Netdev);
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58 quota 100000 bytes used 58 bytes", s.SameListing("table netdev t"));

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("127.0.0.3 counter packets 6 bytes 529", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2", "127.0.0.3");
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87 quota 100000 bytes used 87 bytes", s.SameListing("table netdev t"));

        PlacementMoveCounterTrafficTests.Back(s, back);
        Assert.Contains("127.0.0.3 counter packets 7 bytes 558", s.SameListing("table netdev t"));
        s.Send(12, "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116 quota 100000 bytes used 116 bytes", s.SameListing("table netdev t"));

        // and to the kernel once more: what BPF took over goes back
        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116 quota 100000 bytes used 116 bytes", s.SameListing("table netdev t"));
    }

    /// <summary>An output chain moved to the kernel by `reject`, where it stays (see PlacementMoveCounterTrafficTests).</summary>
    [Fact]
    public void ElementCountersAndQuotasSurviveAMoveToTheKernelForReject()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Netdev.Replace("netdev", "ip").Replace("ingress device \"lo\"", "output"));
        Assert.Contains("table ip t chain in: BPF", s.Rig.Explain());
        s.Send(12, "127.0.0.2", "127.0.0.3", "127.0.0.2");
        s.SameListing();

        s.Apply("add rule ip t in udp dport 14 reject");
        Assert.Contains("table ip t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Contains("127.0.0.3 counter packets 6 bytes 529", s.SameListing());
        s.Send(12, "127.0.0.3");
        Assert.Contains("127.0.0.3 counter packets 7 bytes 558", s.SameListing());
    }

    /// <summary>Sets the chain writes from the packet path: one renewing each element's timeout, one counting each element.</summary>
    const string Written = """
        table netdev t {
            set seen {
                type ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 1m
            }
            set counted {
                type ipv4_addr
                size 8
                flags dynamic
                counter
            }
            chain in {
                type filter hook ingress device "lo" priority 0; policy accept;
                udp dport 11 update @seen { ip daddr timeout 2m }
                udp dport 12 add @counted { ip daddr }
            }
        }
        """;

    static void Write(PacketPathSetTrafficTests.Sides s, params string[] to)
    {
        s.Send(11, to);
        s.Send(12, to);
    }

    /// <summary>
    /// The elements the packet path added keep their expiry and counters when the chain that writes them moves to the
    /// kernel, and back: each side's set goes on with what the other's packet path added, as the kernel's own would.
    /// </summary>
    [Theory]
    [MemberData(nameof(Moves))]
    public void ElementsThePacketPathAddedSurviveAMoveToTheKernelAndBack(string toKernel, string? back)
    {
        using var s = PlacementMoveCounterTrafficTests.InBpf(Written);
        Write(s, "127.0.0.2", "127.0.0.3", "127.0.0.2");
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", s.SameListing("table netdev t"));
        Thread.Sleep(10_000); // the kernel's set must go on from the time they have left, not restart it

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("127.0.0.3 counter packets 1 bytes 29", s.SameListing("table netdev t"));
        Write(s, "127.0.0.2", "127.0.0.4");
        var listing = s.SameListing("table netdev t");
        Assert.Contains("127.0.0.2 counter packets 3 bytes 87", listing);
        Assert.Contains("127.0.0.4 counter packets 1 bytes 29", listing);
        Thread.Sleep(5_000); // and BPF's map from the time the kernel's elements have left

        PlacementMoveCounterTrafficTests.Back(s, back);
        listing = s.SameListing("table netdev t");
        Assert.Contains("127.0.0.4 counter packets 1 bytes 29", listing);
        Write(s, "127.0.0.2", "127.0.0.5");
        listing = s.SameListing("table netdev t");
        Assert.Contains("127.0.0.2 counter packets 4 bytes 116", listing);
        Assert.Contains("127.0.0.5 counter packets 1 bytes 29", listing);
    }

    /// <summary>An ip output chain moved to the kernel by `reject`: its packet-written set goes along.</summary>
    [Fact]
    public void ElementsThePacketPathAddedSurviveAMoveToTheKernelForReject()
    {
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply(Written.Replace("netdev", "ip").Replace("ingress device \"lo\"", "output"));
        Assert.Contains("table ip t chain in: BPF", s.Rig.Explain());
        Write(s, "127.0.0.2", "127.0.0.3", "127.0.0.2");
        s.SameListing();
        Thread.Sleep(10_000);

        s.Apply("add rule ip t in udp dport 14 reject");
        Assert.Contains("table ip t chain in: kernel nf_tables", s.Rig.Explain());
        Assert.Contains("127.0.0.2 counter packets 2 bytes 58", s.SameListing());
        Write(s, "127.0.0.3");
        Assert.Contains("127.0.0.3 counter packets 2 bytes 58", s.SameListing());
    }

    /// <summary>
    /// An element the control plane gave a timeout expires when the kernel's own would after its set moves to the kernel:
    /// the kernel's new set goes on from the time it has left, not from a whole new timeout.
    /// </summary>
    [Theory]
    [MemberData(nameof(Moves))]
    public void AnElementWithATimeoutExpiresOnTimeAfterAMoveToTheKernel(string toKernel, string? back)
    {
        _ = back;
        using var s = new PacketPathSetTrafficTests.Sides("auto");
        s.Apply("""
            table netdev t {
                set s {
                    type ipv4_addr
                    flags timeout
                    elements = { 127.0.0.2 timeout 30s }
                }
                chain in {
                    type filter hook ingress device "lo" priority 0; policy accept;
                    udp dport 12 ip daddr @s counter
                }
            }
            """);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Contains("table netdev t chain in: BPF", s.Rig.Explain());
        // 30 s with the move after 5 s: at a load of 40 a 20 s element moved after 9 s had expired before the listing
        Thread.Sleep(5_000);

        PlacementMoveCounterTrafficTests.ToKernel(s, toKernel);
        Assert.Contains("127.0.0.2 timeout 30s expires", s.SameListing("table netdev t"));
        // past the 30 s (the kernel's own set holds it no more), before 30 s after the move (at 35 s or later)
        Thread.Sleep(TimeSpan.FromMilliseconds(Math.Max(0, 31_500 - clock.ElapsedMilliseconds)));
        s.Send(12, "127.0.0.2");
        Assert.Contains("ip daddr @s counter packets 0 bytes 0", s.SameListing("table netdev t"));
    }
}
