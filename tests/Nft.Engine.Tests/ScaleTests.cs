using System.Buffers.Binary;
using System.Diagnostics;
using Nft.Netlink;
using Xunit.Abstractions;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// Large sets: no per-element work may scan the set (issue 12 measured 262,144 elements taking
/// 1,751 s, from size checks and interval overlap checks that walked every element).
/// </summary>
[Collection(nameof(ScaleTests))]
public class ScaleTests(ITestOutputHelper output)
{
    const uint SetSize = 1 << 20;

    /// <summary>An interval set with a declared size: both the size limit and the overlap check apply to every element.</summary>
    static byte[] NewIntervalSet(uint seq) => Msg(9, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "big");
        w.PutU32Be(3, 0x4); // NFT_SET_INTERVAL
        w.PutU32Be(4, 7);   // ipv4_addr
        w.PutU32Be(5, 4);
        var desc = w.BeginNested(9);
        w.PutU32Be(1, SetSize);
        w.EndNested(desc);
        w.PutU32Be(10, seq);
    });

    /// <summary>Ranges [first + 4k, first + 4k + 2) for k in [0, count): each is a start and an interval end, as nft sends them.</summary>
    static byte[] AddRanges(uint seq, uint first, int count) => Msg(12, Create, seq, Ip, w =>
    {
        w.PutString(1, "t");
        w.PutString(2, "big");
        var list = w.BeginNested(3);
        for (int k = 0; k < count; k++)
        {
            uint start = first + 4 * (uint)k;
            Ipv4Element(w, start, end: false);
            Ipv4Element(w, start + 2, end: true);
        }
        w.EndNested(list);
    });

    [Fact]
    public void HundredThousandElementsThenOneMoreDoNotScanTheSet()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(1, "t"), NewIntervalSet(2)), Port));

        // 50,000 ranges = 100,000 elements, in messages of 1,000 elements as nft splits them.
        const int RangesPerMessage = 500, Messages = 100;
        var msgs = new byte[Messages][];
        for (int i = 0; i < Messages; i++) msgs[i] = AddRanges((uint)(10 + i), 0x0a000000u + (uint)(i * RangesPerMessage * 4), RangesPerMessage);
        var batch = Batch(msgs);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        Assert.Empty(ep.Process(batch, Port));
        var bulk = sw.Elapsed;
        var bulkCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu;
        var set = ep.Ruleset.Tables[0].Sets[0];
        Assert.Equal(100_000, set.Elements.Count);
        Assert.Equal(50_000, set.Elements.Starts);

        // One more range in the gap after the last one.
        uint next = 0x0a000000u + (uint)(Messages * RangesPerMessage * 4);
        sw.Restart();
        Assert.Empty(ep.Process(Batch(AddRanges(200, next, 1)), Port));
        var one = sw.Elapsed;
        Assert.Equal(100_002, ep.Ruleset.Tables[0].Sets[0].Elements.Count);

        // A start strictly inside an existing range still collides (found from its neighbours).
        var inside = Msg(12, Create, 201, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "big");
            var list = w.BeginNested(3);
            Ipv4Element(w, 0x0a000000u + 4 * 20_000 + 1, end: false);
            w.EndNested(list);
        });
        Assert.Equal(Errno.EEXIST, Error(Assert.Single(NlTestKit.Messages(ep.Process(Batch(inside), Port))).Bytes).Errno);

        output.WriteLine($"engine: 100,000 elements in one batch: {bulk.TotalMilliseconds:F0} ms " +
            $"({bulkCpu.TotalMilliseconds:F0} ms of process CPU); one more element: {one.TotalMilliseconds:F2} ms");
        // Generous sanity bounds for a slow shared machine (2 cores, many processes); the quadratic
        // version needed minutes for this. The CPU time is the steadier measure of the engine's work.
        Assert.True(bulkCpu < TimeSpan.FromSeconds(5), $"100,000 elements took {bulkCpu} of CPU");
        Assert.True(bulk < TimeSpan.FromSeconds(60), $"100,000 elements took {bulk}");
        Assert.True(one < TimeSpan.FromSeconds(1), $"one element took {one}");
    }
}

/// <summary>The scale test measures time: it runs alone, not beside the other test classes.</summary>
[CollectionDefinition(nameof(ScaleTests), DisableParallelization = true)]
public class ScaleTestsCollection;
