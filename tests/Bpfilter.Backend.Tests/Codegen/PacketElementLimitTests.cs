using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// `limit` on elements the packet path adds (a meter's `{ ip saddr limit rate 1/second }`), as nft_dynset_eval runs
/// it: each element's own token bucket, made full when the element is made (nft_limit_clone), in the set's bucket
/// map keyed by (element key, born stamp). The packets run back to back (well under a millisecond), so the buckets
/// refill by less than one packet's cost between them.
/// </summary>
public class PacketElementLimitTests
{
    private static byte[] Tcp4(string src, ushort dport = 22) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport);

    private static Backend.Ir.Set Metered(params Statement[] statements) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16, PacketStatements = statements.ToValueList(),
        };

    private static Rule Add(Verdict verdict, params Matcher[] m) =>
        new(m.ToValueList(), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "s", Fields.Ip.Saddr, TimeSpan.FromSeconds(30))), verdict);

    private static Rule Delete(params Matcher[] m) =>
        new(m.ToValueList(), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Delete, "s", Fields.Ip.Saddr, null)), Verdict.Accept);

    private static LimitStatement PerSecond(uint burst, bool over = false) => new(1, TimeSpan.FromSeconds(1), burst, Over: over);

    private static IReadOnlyList<PacketElementState> State(LoadedProgram p, string addr) =>
        p.LiveElements("s")!.Single(e => new Value(e.Key).ToString() == V4(addr).ToString()).State;

    private static int Buckets(LoadedProgram p) => p.BucketMap("s")!.Keys().Count;

    [Fact]
    public void ANewElementGetsAFullBucketOfItsOwnAndPacketsBeyondItsRateBreakTheRule()
    {
        using var p = Load(Xdp, Verdict.Accept, [Add(Verdict.Drop)], sets: [Metered(PerSecond(3))]);
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5"))); // the burst of 3 is spent: the limit breaks the rule
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        for (var i = 0; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6"))); // another element, its own full bucket
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6")));
        Assert.Equal(2, Buckets(p));
        // listed with its configuration only, as the kernel lists it
        Assert.Equal(PerSecond(3), Assert.Single(State(p, "198.18.0.5")).Statement);
        // both copies hold the element with the same born stamp
        var v0 = new byte[p.SetMapCopy("s", 0)!.ValueSize];
        var v1 = new byte[v0.Length];
        Assert.True(p.SetMapCopy("s", 0)!.TryLookup(V4("198.18.0.5").Bytes.AsSpan(), v0));
        Assert.True(p.SetMapCopy("s", 1)!.TryLookup(V4("198.18.0.5").Bytes.AsSpan(), v1));
        Assert.Equal(v0, v1);
    }

    [Fact]
    public void OverBreaksWithinTheRateAndALookupTakesFromTheSameBucket()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s")), Add(Verdict.Continue)],
            sets: [Metered(PerSecond(2, over: true))]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5"))); // added: one of the two tokens, within: `over` breaks
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5"))); // the lookup takes the second, within; the add's finds none: over, continue
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5"))); // the lookup is over the rate: drop
        Assert.Equal(1, Buckets(p)); // the lookup and the add found the one bucket of the element's key and stamp
    }

    [Fact]
    public void ABytesLimitTakesThePacketsLengthAndACounterBeforeItCountsEveryPacketOneAfterItOnlyThoseWithin()
    {
        // 100 bytes/second, no burst: a bucket of one second, each packet costs its length in hundredths of it
        var bytes = new LimitStatement(100, TimeSpan.FromSeconds(1), 0, LimitType.Bytes);
        using var p = Load(Xdp, Verdict.Accept, [Add(Verdict.Drop)],
            sets: [Metered(new CounterStatement(0), bytes, new CounterStatement(0))]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        var length = State(p, "198.18.0.5")[0].Bytes;
        var within = 100 / (int)length;
        for (var i = 1; i < within; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        var state = State(p, "198.18.0.5");
        Assert.Equal((ulong)within + 2, state[0].Packets);
        Assert.Equal((ulong)within, state[2].Packets);
    }

    [Fact]
    public void AnElementDeletedReplacedAfterItExpiredOrCollectedTakesItsBucketAndTheNextGetsAFullOne()
    {
        var port23 = Matcher.Eq(Fields.Tcp.Dport, U16(23));
        using var p = Load(Xdp, Verdict.Accept, [Delete(port23), Add(Verdict.Drop)], sets: [Metered(PerSecond(2))]);
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        // `delete @s` in BPF deletes the element and its bucket
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5", 23)));
        Assert.Equal(0, Buckets(p));
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        // an element that expired: the packet that replaces it deletes the old bucket and gets a full one
        var key = V4("198.18.0.5").Bytes.ToArray();
        Expire(p, key);
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(1, Buckets(p));
        // a control-plane delete: the batch's sweep takes the bucket
        p.UpdateMap("set:s", [], [key]);
        Assert.Equal(0, Buckets(p));
        for (var i = 0; i < 2; i++) Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        // the expiry collector: the element and, with it, its bucket
        Expire(p, key);
        Assert.Equal(1, p.CollectExpired());
        Assert.Equal(0, Buckets(p));
    }

    /// <summary>Makes the element of <paramref name="key"/> expired in both copies (expiry jiffies 1).</summary>
    private static void Expire(LoadedProgram p, byte[] key)
    {
        foreach (var copy in new[] { 0, 1 })
        {
            var map = p.SetMapCopy("s", copy)!;
            var value = new byte[map.ValueSize];
            Assert.True(map.TryLookup(key.AsSpan(), value));
            BitConverter.TryWriteBytes(value.AsSpan(8 /* SetLayout.ExpiresOffset */), 1UL);
            map.Update(key, value);
        }
    }
}
