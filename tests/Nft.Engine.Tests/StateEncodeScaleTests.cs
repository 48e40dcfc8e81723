using System.Diagnostics;
using Nft.Netlink;
using Xunit.Abstractions;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// The saved state at 10,000 same-shape rules (`ip saddr 10.a.b.c udp dport P counter drop`, as bench/suite.py's
/// `same` shape): a full encode reuses each rule's NEWRULE bytes from its first encode, and a rule added to the
/// chain is a journal record of one rule, not the state again. Prints the times (issue 12's measurement).
/// </summary>
[Collection(nameof(ScaleTests))]
public class StateEncodeScaleTests(ITestOutputHelper output)
{
    static void Expr(NetlinkWriter w, string name, Action<NetlinkWriter> data)
    {
        var e = w.BeginNested(1);
        w.PutString(1, name);
        var d = w.BeginNested(2);
        data(w);
        w.EndNested(d);
        w.EndNested(e);
    }

    static void Payload(NetlinkWriter w, uint bas, uint offset, uint len) => Expr(w, "payload", d =>
    {
        d.PutU32Be(1, 1);
        d.PutU32Be(2, bas);
        d.PutU32Be(3, offset);
        d.PutU32Be(4, len);
    });

    static void Cmp(NetlinkWriter w, byte[] value) => Expr(w, "cmp", d =>
    {
        d.PutU32Be(1, 1);
        d.PutU32Be(2, 0);
        var v = d.BeginNested(3);
        d.PutBytes(1, value);
        d.EndNested(v);
    });

    /// <summary>ip saddr 10.a.b.c meta l4proto udp udp dport P counter drop, as nft encodes it for an ip-family chain.</summary>
    internal static Action<NetlinkWriter> SameShape(int i) => w =>
    {
        Payload(w, 1, 12, 4);
        Cmp(w, [10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);
        Expr(w, "meta", d => { d.PutU32Be(2, 16); d.PutU32Be(1, 1); });
        Cmp(w, [17]);
        Payload(w, 2, 2, 2);
        Cmp(w, [(byte)((1024 + i % 60000) >> 8), (byte)(1024 + i % 60000)]);
        Counter(w);
        Verdict(w, 0);
    };

    [Fact]
    public void TenThousandRulesEncodeFromKeptRuleBytesAndARuleAddIsASmallRecord()
    {
        byte[]? record = null;
        var ep = NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"),
            RefuseOutOfScope = false,
            RulesCommitted = r => { record = r; return true; },
        });
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), .. Enumerable.Range(0, 10_000).Select(i => AddRule(4, "t", "c", SameShape(i)))];
        Assert.Empty(ep.Process(Batch(load), Port));
        Assert.Equal(10_000, ep.Ruleset.Tables[0].Chains[0].Rules.Count);

        var sw = Stopwatch.StartNew();
        var first = ep.ExportState();
        var cold = sw.Elapsed;
        var warm = TimeSpan.MaxValue;
        for (int k = 0; k < 5; k++)
        {
            sw.Restart();
            Assert.Equal(first, ep.ExportState());
            warm = sw.Elapsed < warm ? sw.Elapsed : warm;
        }
        sw.Restart();
        Assert.Empty(ep.Process(Batch(AddRule(5, "t", "c", SameShape(10_000))), Port));
        var add = sw.Elapsed;
        Assert.NotNull(record);
        Assert.True(record!.Length < 600, $"a record of {record.Length} bytes");
        var copy = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), RefuseOutOfScope = false });
        copy.ImportState(first, [.. NfTablesEndpoint.JournalHeader(first), .. record]);
        Assert.Equal(ep.ExportState(), copy.ExportState());
        output.WriteLine($"state of 10,000 rules: {first.Length:N0} bytes; first encode {cold.TotalMilliseconds:F1} ms, " +
            $"again (rule bytes kept) best of 5 {warm.TotalMilliseconds:F1} ms; add rule (engine, record of {record.Length} bytes) {add.TotalMilliseconds:F2} ms");
    }
}
