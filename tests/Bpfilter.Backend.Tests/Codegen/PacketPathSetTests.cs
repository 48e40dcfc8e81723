using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Sets written from the packet path (nft_dynset on an rhash set): `add` inserts an absent or expired key with
/// expiry now + timeout and keeps a live one, `update` also renews a live element's expiry, `delete` removes
/// it, a full set (its size) breaks the rule; both copies of the set map are written.
/// </summary>
public class PacketPathSetTests
{
    private static byte[] Tcp4(string src) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, 22);

    private static Backend.Ir.Set Seen(int size = 65535, bool timeouts = true, params SetElement[] elements) =>
        new("s", Fields.Ip.Saddr, SetData.NoData, elements.ToValueList(), Timeouts: timeouts) { PacketWritten = true, Size = size };

    private static Rule Update(SetUpdateOp op, Verdict verdict, TimeSpan? timeout = null) =>
        new(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new SetUpdateStatement(op, "s", Fields.Ip.Saddr, timeout)), verdict);

    /// <summary>The expiry (0: never) of a key in both copies; null where a copy lacks it.</summary>
    private static (ulong? Copy0, ulong? Copy1) Expiry(LoadedProgram p, string addr)
    {
        ulong? Read(int copy)
        {
            var value = new byte[p.SetMapCopy("s", copy)!.ValueSize];
            return p.SetMapCopy("s", copy)!.TryLookup(V4(addr).Bytes.AsSpan(), value) ? BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(8)) : null;
        }
        return (Read(0), Read(1));
    }

    private static ulong Hz => (ulong)KernelClock.Hz!.Value;

    [Fact]
    public void AddInsertsWithItsTimeoutIntoBothCopies()
    {
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue, TimeSpan.FromSeconds(30))], sets: [Seen()]);
        var before = KernelClock.Jiffies64();
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        var after = KernelClock.Jiffies64();
        var (c0, c1) = Expiry(p, "198.18.0.5");
        Assert.InRange(c0!.Value, before + 30 * Hz, after + 30 * Hz);
        Assert.Equal(c0, c1);
        Assert.Equal((null, null), Expiry(p, "198.18.0.6"));
    }

    [Fact]
    public void LiveElementsListTheLiveCopyWithEachElementsTimeout()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue, TimeSpan.FromSeconds(30))],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.6")) with { Expires = now - 1 }, SetElement.Exact(V4("198.18.0.7"))])]);
        var before = KernelClock.Jiffies64();
        p.Run(Tcp4("198.18.0.5"));
        var after = KernelClock.Jiffies64();
        var live = p.LiveElements("s")!.ToDictionary(e => new Value(e.Key).ToString());
        // the expired 198.18.0.6 is not listed, as nft_rhash_walk skips it
        Assert.Equal([V4("198.18.0.5").ToString(), V4("198.18.0.7").ToString()], live.Keys.Order());
        Assert.Equal(30 * Hz, live[V4("198.18.0.5").ToString()].Timeout);
        Assert.InRange(live[V4("198.18.0.5").ToString()].Expires!.Value, before + 30 * Hz, after + 30 * Hz);
        // the control plane's permanent element: no expiry, no timeout of the packet path's
        Assert.Equal((null, null), (live[V4("198.18.0.7").ToString()].Expires, live[V4("198.18.0.7").ToString()].Timeout));
        // after a control-plane batch switches the generation the other copy lists the same
        p.AddElement("s", SetElement.Exact(V4("198.18.0.8")));
        Assert.Equal(3, p.LiveElements("s")!.Count);
    }

    [Fact]
    public void CollectExpiredTakesExpiredElementsOutOfBothCopiesSoAFullSetTakesANewOne()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue, TimeSpan.FromSeconds(30))],
            sets: [Seen(size: 2, elements: [SetElement.Exact(V4("198.18.0.6")) with { Expires = now - 1 }, SetElement.Exact(V4("198.18.0.7"))])]);
        p.Run(Tcp4("198.18.0.5")); // full: the expired element still holds its slot, as until the kernel's GC
        Assert.Equal((null, null), Expiry(p, "198.18.0.5"));
        Assert.Equal(1, p.CollectExpired());
        Assert.Equal((null, null), Expiry(p, "198.18.0.6"));
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.7")); // permanent: never collected
        p.Run(Tcp4("198.18.0.5"));
        Assert.NotNull(Expiry(p, "198.18.0.5").Copy0);
        Assert.Equal(0, p.CollectExpired());
    }

    [Fact]
    public void AddKeepsALiveElementAndReplacesAnExpiredOne()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue, TimeSpan.FromSeconds(30))],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.5")) with { Expires = now + 5 * Hz },
                SetElement.Exact(V4("198.18.0.6")) with { Expires = now - 1 }, SetElement.Exact(V4("198.18.0.7"))])]);
        p.Run(Tcp4("198.18.0.5"));
        p.Run(Tcp4("198.18.0.6"));
        p.Run(Tcp4("198.18.0.7"));
        Assert.Equal((now + 5 * Hz, now + 5 * Hz), Expiry(p, "198.18.0.5"));
        Assert.True(Expiry(p, "198.18.0.6").Copy0 >= now + 30 * Hz);
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.7")); // a permanent element stays permanent
    }

    [Fact]
    public void UpdateRenewsALiveElementsExpiry()
    {
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Update, Verdict.Continue, TimeSpan.FromSeconds(30))],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.5")) with { Expires = now + 5 * Hz }, SetElement.Exact(V4("198.18.0.7"))])]);
        p.Run(Tcp4("198.18.0.5"));
        p.Run(Tcp4("198.18.0.7"));
        p.Run(Tcp4("198.18.0.8"));
        var (c0, c1) = Expiry(p, "198.18.0.5");
        Assert.True(c0 >= now + 30 * Hz, $"{c0} < {now} + 30 s");
        Assert.Equal(c0, c1);
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.7")); // no NFT_SET_EXT_EXPIRATION: nothing to renew
        Assert.True(Expiry(p, "198.18.0.8").Copy1 >= now + 30 * Hz);
    }

    [Fact]
    public void UpdateWithoutATimeoutExpiresAnExpiringElementAtOnce()
    {
        // nft_dynset_eval renews to jiffies + (priv->timeout ?: set->timeout): with neither, the element expires now
        var now = KernelClock.Jiffies64();
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Update, Verdict.Continue), Drop(Matcher.InSet(Fields.Ip.Saddr, "s"))],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.5")) with { Expires = now + 100 * Hz }])]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.True(Expiry(p, "198.18.0.5").Copy0 <= KernelClock.Jiffies64());
        // a new key gets no expiry at all
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.9")));
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.9"));
    }

    [Fact]
    public void ASetWithoutTimeoutsHoldsPlainElements()
    {
        using var p = Load(Xdp, Verdict.Accept, [Drop(Matcher.InSet(Fields.Ip.Saddr, "s")), Update(SetUpdateOp.Add, Verdict.Continue)],
            sets: [Seen(timeouts: false)]);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6")));
    }

    [Fact]
    public void DeleteRemovesFromBothCopiesAndNeverBreaks()
    {
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Delete, Verdict.Drop)],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.5"))])]);
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.5"));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.Equal((null, null), Expiry(p, "198.18.0.5"));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
    }

    [Fact]
    public void AFullSetBreaksTheRule()
    {
        // size 2: the third key finds no room (nft_dynset_new's atomic_add_unless fails) and the rule breaks
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Drop, TimeSpan.FromSeconds(30))],
            sets: [Seen(size: 2, elements: [SetElement.Exact(V4("198.18.0.5"))])]);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.7")));
        Assert.Equal((null, null), Expiry(p, "198.18.0.7"));
        // a key already there needs no room
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6")));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5")));
        Assert.True(p.RemoveElement("s", SetElement.Exact(V4("198.18.0.5"))));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.7")));
    }

    [Fact]
    public void AControlPlaneBatchKeepsPacketPathElements()
    {
        using var p = Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue, TimeSpan.FromSeconds(30))],
            sets: [Seen(elements: [SetElement.Exact(V4("198.18.0.1"))])]);
        p.Run(Tcp4("198.18.0.5"));
        // code 1, no expiry, no packet-path timeout
        static (byte[], byte[]) Entry(string addr) => (V4(addr).Bytes.ToArray(), [1, .. new byte[23]]);
        // three keys: written to the standby copy, generation switched, then replayed on the old copy
        var generation = p.Generation;
        p.UpdateMap("set:s", [Entry("198.18.0.2"), Entry("198.18.0.3")], [V4("198.18.0.1").Bytes.ToArray()]);
        Assert.NotEqual(generation, p.Generation);
        Assert.NotNull(Expiry(p, "198.18.0.5").Copy0);
        Assert.NotNull(Expiry(p, "198.18.0.5").Copy1);
        Assert.Equal((null, null), Expiry(p, "198.18.0.1"));
        Assert.Equal((0UL, 0UL), Expiry(p, "198.18.0.2"));
    }

    [Fact]
    public void TcAndNetfilterProgramsWriteTheSetToo()
    {
        using (var tc = Load(TcIn, Verdict.Accept, [Update(SetUpdateOp.Update, Verdict.Drop, TimeSpan.FromSeconds(30))], sets: [Seen(size: 1)]))
        {
            Assert.Equal(TcShot, tc.Run(Tcp4("198.18.0.5")));
            Assert.Equal(TcOk, tc.Run(Tcp4("198.18.0.6"))); // full
            Assert.NotNull(Expiry(tc, "198.18.0.5").Copy1);
        }
        using var nf = Load(NfIn4, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Drop, TimeSpan.FromSeconds(30))], sets: [Seen(size: 1)]);
        Assert.Equal(NfDrop, nf.Run(Tcp4("198.18.0.5")));
        Assert.Equal(NfAccept, nf.Run(Tcp4("198.18.0.6")));
        Assert.NotNull(Expiry(nf, "198.18.0.5").Copy0);
    }

    /// <summary>A rule giving its elements a list the set was not compiled with (not among its Set.RuleLists) is refused.</summary>
    [Fact]
    public void AStatementListTheSetWasNotCompiledWithIsRefused()
    {
        var meter = new SetUpdateStatement(SetUpdateOp.Update, "s", Fields.Ip.Saddr, null, null, ValueList.Of<Statement>(new CounterStatement(1)));
        var rule = new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(meter), Verdict.Continue);
        var e = Assert.Throws<CodegenException>(() => Load(Xdp, Verdict.Accept, [rule], sets: [Seen()]));
        Assert.Contains("was compiled without the statement list this rule gives its elements", e.Message);
    }

    [Fact]
    public void OnlyAPlainSetIsWrittenFromThePacketPath()
    {
        var vmap = new Backend.Ir.Set("s", Fields.Ip.Saddr, SetData.VerdictData, ValueList<SetElement>.Empty) { PacketWritten = true, Size = 10 };
        Assert.Throws<CodegenException>(() => Load(Xdp, Verdict.Accept, [Update(SetUpdateOp.Add, Verdict.Continue)], sets: [vmap]));
    }
}
