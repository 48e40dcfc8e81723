using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Two CPUs making the same packet-path element in the same instant, as nft_rhash_update resolves it: the first
/// insert's element is kept and the second packet's statements run on it. The packet that makes an element writes
/// the copy packets read only (BPF_NOEXIST: a CPU whose insert finds the key there runs its statements on the element
/// it finds), with a code saying the other copy does not hold it yet; whoever runs the element's statements first
/// writes it there as it is. These tests start from the state the winning CPU leaves between its two writes (the live
/// copy holds its element, stamp and counter included, the other copy does not, or another CPU already wrote it there)
/// and check that the packet's statements land on that element in both copies, which stay equal.
/// </summary>
public class PacketElementCreationRaceTests
{
    // the value of Metered's elements: code, statement code (1 statements, 3 not yet in the other copy), expiry,
    // timeout, the counter's packets and bytes, the limit's born stamp
    const int StatementCode = 4, Expires = 8, Packets = 24, Bytes = 32, Born = 40, ValueSize = 48;
    const ulong Stamp = 4 * 1_000_003UL + 2 * 1 + 1; // as ktime * 4 + 2 * index + 1 makes it for the limit at index 1

    private static readonly byte[] Key = V4("198.18.0.5").Bytes.ToArray();

    private static byte[] Tcp4() => PacketBuilder.Ether().Ipv4("198.18.0.5", "198.18.0.2").Tcp(40000, 22);

    private static LoadedProgram LoadMeter() => Load(Xdp, Verdict.Accept,
        [new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "s", Fields.Ip.Saddr, TimeSpan.FromSeconds(30))), Verdict.Drop)],
        sets: [new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
        {
            PacketWritten = true, Size = 16,
            PacketStatements = ValueList.Of<Statement>(new CounterStatement(0), new LimitStatement(1, TimeSpan.FromSeconds(1), 3)),
        }]);

    /// <summary>An element as the packet path makes it (no expiry: live whatever the clock), with a counter already at 5 packets, 500 bytes.</summary>
    private static byte[] Made(uint statementCode)
    {
        var v = new byte[ValueSize];
        BitConverter.TryWriteBytes(v.AsSpan(0), 1u);
        BitConverter.TryWriteBytes(v.AsSpan(StatementCode), statementCode);
        BitConverter.TryWriteBytes(v.AsSpan(Packets), 5UL);
        BitConverter.TryWriteBytes(v.AsSpan(Bytes), 500UL);
        BitConverter.TryWriteBytes(v.AsSpan(Born), Stamp);
        return v;
    }

    private static BpfMap Copy(LoadedProgram p, bool live) => p.SetMapCopy("s", live ? p.Generation : p.Generation ^ 1)!;

    private static byte[]? Raw(LoadedProgram p, bool live)
    {
        var value = new byte[Copy(p, live).ValueSize];
        return Copy(p, live).TryLookup(Key.AsSpan(), value) ? value : null;
    }

    /// <summary>Both copies hold the same element: statement code 1, the stamp it was made with, the counter at 5 + packets.</summary>
    private static void AssertBothCopies(LoadedProgram p, ulong packets, ulong length)
    {
        var live = Raw(p, live: true)!;
        var other = Raw(p, live: false);
        Assert.NotNull(other);
        Assert.Equal(live, other);
        Assert.Equal(1u, BitConverter.ToUInt32(live, StatementCode));
        Assert.Equal(Stamp, BitConverter.ToUInt64(live, Born));
        Assert.Equal((5 + packets, 500 + packets * length), (BitConverter.ToUInt64(live, Packets), BitConverter.ToUInt64(live, Bytes)));
    }

    private static ulong FirstPacketsLength(LoadedProgram p)
    {
        Assert.Equal(XdpDrop, p.Run(Tcp4()));
        var length = BitConverter.ToUInt64(Raw(p, live: true)!, Bytes) - 500;
        Assert.True(length > 0);
        return length;
    }

    [Fact]
    public void AnElementAnotherCpuMadeInTheLiveCopyOnlyIsWrittenToTheOtherCopyAsItIsThenThePacketCountsInBoth()
    {
        using var p = LoadMeter();
        Assert.Equal(ValueSize, Copy(p, live: true).ValueSize);
        Copy(p, live: true).Update(Key, Made(3));
        Assert.Null(Raw(p, live: false));
        var length = FirstPacketsLength(p);
        AssertBothCopies(p, 1, length);
        // the limit runs on the bucket of the element's stamp, not on one of a stamp of this packet's own
        var bucket = Assert.Single(p.BucketMap("s")!.Keys());
        Assert.Equal(Stamp, BitConverter.ToUInt64(bucket, bucket.Length - 8));
        for (var i = 1; i < 3; i++) Assert.Equal(XdpDrop, p.Run(Tcp4()));
        Assert.Equal(XdpPass, p.Run(Tcp4())); // the burst of 3 is spent: the limit breaks the rule
        AssertBothCopies(p, 4, length);
        Assert.Single(p.BucketMap("s")!.Keys());
    }

    [Fact]
    public void AnElementAnotherCpuAlreadyWroteToTheOtherCopyIsLeftThereAndThePacketCountsInBoth()
    {
        using var p = LoadMeter();
        Copy(p, live: true).Update(Key, Made(3));
        Copy(p, live: false).Update(Key, Made(1));
        var length = FirstPacketsLength(p);
        AssertBothCopies(p, 1, length);
        Assert.Equal(XdpDrop, p.Run(Tcp4()));
        AssertBothCopies(p, 2, length);
    }

    /// <summary>
    /// Two threads (on this machine's two CPUs when the scheduler lets them) run the first packet of each of many new
    /// elements at the same moment: whichever makes it and however they interleave, each element ends with both
    /// packets counted in both copies under one stamp. Whether the two inserts ever meet in the same instant is up to
    /// the scheduler (the tests above cover the states they leave); what is asserted holds for every interleaving.
    /// </summary>
    [Fact]
    public void TwoThreadsMakingTheSameElementsAtOnceLeaveEachWithBothPacketsInBothCopies()
    {
        const int Elements = 3000;
        using var p = Load(Xdp, Verdict.Accept,
            [new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "s", Fields.Ip.Saddr, TimeSpan.FromSeconds(60))), Verdict.Drop)],
            sets: [new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true)
            {
                PacketWritten = true, Size = 4096,
                PacketStatements = ValueList.Of<Statement>(new CounterStatement(0), new LimitStatement(1, TimeSpan.FromSeconds(1), 3)),
            }]);
        string Address(int i) => $"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}";
        var packets = Enumerable.Range(0, Elements).Select(i => PacketBuilder.Ether().Ipv4(Address(i), "198.18.0.2").Tcp(40000, 22)).ToArray();
        using var together = new Barrier(2);
        var verdicts = new uint[2, Elements];
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            for (var i = 0; i < Elements; i++)
            {
                together.SignalAndWait();
                verdicts[t, i] = p.Run(packets[i]);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        // the length a counter adds for one of these packets, from one more element made alone
        var alone = V4("10.200.0.1").Bytes.ToArray();
        Assert.Equal(XdpDrop, p.Run(PacketBuilder.Ether().Ipv4("10.200.0.1", "198.18.0.2").Tcp(40000, 22)));
        var aloneValue = new byte[ValueSize];
        Assert.True(Copy(p, live: true).TryLookup(alone.AsSpan(), aloneValue));
        var length = BitConverter.ToUInt64(aloneValue, Bytes);
        Assert.True(length > 0);
        for (var i = 0; i < Elements; i++)
        {
            Assert.Equal((XdpDrop, XdpDrop), (verdicts[0, i], verdicts[1, i]));
            var key = V4(Address(i)).Bytes.ToArray();
            var live = new byte[ValueSize];
            var other = new byte[ValueSize];
            Assert.True(Copy(p, live: true).TryLookup(key.AsSpan(), live));
            Assert.True(Copy(p, live: false).TryLookup(key.AsSpan(), other));
            Assert.Equal(live, other);
            Assert.Equal(1u, BitConverter.ToUInt32(live, StatementCode));
            Assert.Equal((2UL, 2 * length), (BitConverter.ToUInt64(live, Packets), BitConverter.ToUInt64(live, Bytes)));
        }
        // one bucket per element, of the stamp both copies hold
        Assert.Equal(Elements + 1, p.BucketMap("s")!.Keys().Count);
    }

    /// <summary>
    /// `update` on a key no element holds, by two CPUs at once: nft_rhash_update gives the loser the winner's element and
    /// nft_dynset_eval renews its expiry to the loser's now + timeout. Two rules with timeouts of 10 s and 1 h, one thread
    /// each, make the same elements: whichever thread makes an element (its own timeout says which), the other thread's
    /// packet comes second, as the found element's renewal or as the loser's, so the element expires after the other
    /// rule's timeout, never its own. Before the loser renewed, an element two inserts met on kept its maker's expiry.
    /// </summary>
    [Fact]
    public void TheLoserOfTwoUpdatesMakingOneElementRenewsItsExpiry()
    {
        const int Elements = 20000;
        var hz = (ulong)KernelClock.Hz!.Value;
        ulong shortTimeout = 10 * hz, longTimeout = 3600 * hz;
        Rule Updating(ulong port, TimeSpan timeout) => new(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(port))),
            ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, timeout)), Verdict.Drop);
        using var p = Load(Xdp, Verdict.Accept, [Updating(22, TimeSpan.FromSeconds(10)), Updating(23, TimeSpan.FromHours(1))],
            sets: [new("s", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true) { PacketWritten = true, Size = 32768 }]);
        Assert.Equal(24, Copy(p, live: true).ValueSize); // code, expiry, the element's own timeout
        string Address(int i) => $"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}";
        var packets = new[] { 22, 23 }.Select(port => Enumerable.Range(0, Elements)
            .Select(i => PacketBuilder.Ether().Ipv4(Address(i), "198.18.0.2").Tcp(40000, (ushort)port)).ToArray()).ToArray();
        // a spinning rendezvous per element: the threads leave it within a cache line's transfer of each other (a
        // blocking Barrier wakes them microseconds apart, longer than the instant between a miss and an insert)
        var arrived = 0;
        var verdicts = new uint[2, Elements];
        var start = KernelClock.Jiffies64();
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            for (var i = 0; i < Elements; i++)
            {
                Interlocked.Increment(ref arrived);
                var spin = new SpinWait();
                while (Volatile.Read(ref arrived) < 2 * (i + 1)) spin.SpinOnce(sleep1Threshold: -1);
                verdicts[t, i] = p.Run(packets[t][i]);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        var end = KernelClock.Jiffies64();
        for (var i = 0; i < Elements; i++)
        {
            Assert.Equal((XdpDrop, XdpDrop), (verdicts[0, i], verdicts[1, i]));
            var live = new byte[24];
            Assert.True(Copy(p, live: true).TryLookup(V4(Address(i)).Bytes.AsSpan(), live));
            var own = BitConverter.ToUInt64(live, 16);
            Assert.True(own == shortTimeout || own == longTimeout, $"{Address(i)}: own timeout {own}");
            var renewedBy = own == shortTimeout ? longTimeout : shortTimeout;
            Assert.InRange(BitConverter.ToUInt64(live, Expires), start + renewedBy, end + renewedBy);
            // the other copy holds it too (its expiry may be the maker's: see the README on the copies' window)
            Assert.True(Copy(p, live: false).TryLookup(V4(Address(i)).Bytes.AsSpan(), new byte[24]));
        }
    }

    [Fact]
    public void TheElementListsItsStatementsWhileTheOtherCopyDoesNotHoldItYet()
    {
        using var p = LoadMeter();
        Copy(p, live: true).Update(Key, Made(3));
        var state = Assert.Single(p.LiveElements("s")!).State;
        Assert.Equal((5UL, 500UL), (state[0].Packets, state[0].Bytes));
    }
}
