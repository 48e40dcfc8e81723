using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Sets with timeouts: an element whose expiry (jiffies64) has come no longer matches, compared as
/// nft_set_elem_expired does (time_after_eq64(jiffies64, expiration)); one without expiry never expires.
/// </summary>
public class SetTimeoutTests
{
    private static byte[] Tcp4(string src, ushort dport = 22) =>
        PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    private static SetElement Expiring(string addr, ulong? expires, Verdict? verdict = null) =>
        SetElement.Exact(V4(addr), verdict) with { Expires = expires };

    [Fact]
    public void ClockReadsTheKernelsJiffies()
    {
        Assert.True(KernelClock.Available, $"HZ {KernelClock.Hz}");
        var slept = System.Diagnostics.Stopwatch.StartNew();
        var a = KernelClock.Jiffies64();
        Thread.Sleep(50);
        var b = KernelClock.Jiffies64();
        var hz = (ulong)KernelClock.Hz!.Value;
        // at least 50 ms (5 to 50 jiffies at HZ 100..1000), at most what really passed (a loaded machine sleeps
        // longer) and a tick; jiffies64 starts 5 minutes before the 32-bit wrap
        Assert.InRange(b - a, hz / 40, (ulong)slept.ElapsedMilliseconds * hz / 1000 + 1);
        Assert.True(a > uint.MaxValue - 300UL * (ulong)KernelClock.Hz!.Value);
        var ms = KernelClock.NowMs();
        Assert.Equal(0, ms % KernelClock.TickMs!.Value);
        Assert.InRange(KernelClock.ToJiffies(ms), b, b + (ulong)KernelClock.Hz!.Value);
    }

    [Fact]
    public void ExpiredElementsDoNotMatch()
    {
        var now = KernelClock.Jiffies64();
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(
            Expiring("198.18.0.5", now + 100_000), // far ahead
            Expiring("198.18.0.6", now - 1),        // gone
            Expiring("198.18.0.7", now),            // expiration == jiffies: expired (time_after_eq64)
            Expiring("198.18.0.8", null)), Timeouts: true);
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s"))], sets: [set]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.7")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.8")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9")));
    }

    [Fact]
    public void AnElementExpiresWhileTheProgramRuns()
    {
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true);
        // `!= @s`: an expired element is a miss, so the negated lookup matches it
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s", negated: true))], sets: [set]);
        var at = KernelClock.Jiffies64() + (ulong)KernelClock.Hz!.Value; // a second from now (a loaded machine is slow)
        Assert.True(p.AddElement("s", Expiring("198.18.0.5", at)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        while (KernelClock.Jiffies64() < at) Thread.Sleep(20);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
    }

    [Fact]
    public void VerdictMapElementsExpire()
    {
        var now = KernelClock.Jiffies64();
        var vmap = new Backend.Ir.Set("v", Fields.Ip.Saddr, SetData.VerdictData, ValueList.Of(
            Expiring("198.18.0.5", now + 100_000, Verdict.Drop), Expiring("198.18.0.6", now - 10, Verdict.Drop)), Timeouts: true);
        using var p = Load(Xdp, Verdict.Accept, [new Rule(Verdict.VMap(Fields.Ip.Saddr, "v"))], sets: [vmap]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6")));
    }

    [Fact]
    public void AddedElementsCarryTheirExpiry()
    {
        var now = KernelClock.Jiffies64();
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true);
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s"))], sets: [set]);
        Assert.True(p.AddElement("s", Expiring("198.18.0.5", now + 100_000)));
        Assert.True(p.AddElement("s", Expiring("198.18.0.6", now - 1)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6")));
        var value = new byte[16];
        Assert.True(p.SetMap("s")!.TryLookup(V4("198.18.0.5").Bytes.AsSpan(), value));
        Assert.Equal(now + 100_000, BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(8)));
    }

    [Fact]
    public void AStaticInterfaceLookupStillRunsSoAnExpiredElementMisses()
    {
        // iifname is known at compile time at XDP, but whether "lo" is still in the set is not
        var now = KernelClock.Jiffies64();
        var ifnames = new Backend.Ir.Set("i", new MatchKey(Fields.IifName), SetData.NoData, ValueList.Of(
            SetElement.Exact(Value.IfName("lo")) with { Expires = now - 1 }), Timeouts: true);
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(new MatchKey(Fields.IifName), "i"))], sets: [ifnames]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.True(p.AddElement("i", SetElement.Exact(Value.IfName("lo")) with { Expires = now + 100_000 }));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
    }

    [Fact]
    public void ASetWithoutTimeoutsRefusesAnExpiringElement()
    {
        var set = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.NoData, ValueList.Of(Expiring("198.18.0.5", 5)));
        Assert.Throws<CodegenException>(() => Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s"))], sets: [set]));
    }
}
