using System.Diagnostics;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>
/// A large batch's rule messages for the state file are encoded on another thread while the backend prepares
/// (<see cref="RuleMessagePrefill"/>), and the state saved after it is the bytes a save encoding every rule itself writes.
/// </summary>
public class RuleMessagePrefillTests
{
    /// <summary>Waits in <see cref="Prepare"/> (at most 10 s) until the endpoint's prefill encoded <see cref="Expected"/> rule messages.</summary>
    sealed class WaitingBackend : IRulesetBackend
    {
        public NfTablesEndpoint? Endpoint;
        public int Expected;
        public int SeenDuringPrepare = -1;

        public void Prepare(RulesetChange change)
        {
            var sw = Stopwatch.StartNew();
            while (Endpoint!.RuleMessagesPrefilled < Expected && sw.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
            SeenDuringPrepare = Endpoint.RuleMessagesPrefilled;
        }

        public void Commit() { }
        public void Abort() { }
        public CounterValue? ReadCounter(CounterRef counter) => null;
        public void ResetCounter(CounterRef counter) { }
    }

    [Fact]
    public void ABigBatchsRuleMessagesAreEncodedWhileTheBackendPreparesAndSavedAsEncodedInPlace()
    {
        const int rules = 300;
        byte[]? saved = null;
        var backend = new WaitingBackend { Expected = rules };
        var ep = NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"), RefuseOutOfScope = false, Backend = backend, StateChanged = s => saved = s,
        });
        backend.Endpoint = ep;
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), .. Enumerable.Range(0, rules).Select(i => AddRule(4, "t", "c", StateEncodeScaleTests.SameShape(i)))];
        Assert.Empty(ep.Process(Batch(load), Port));
        Assert.Equal(rules, backend.SeenDuringPrepare);
        Assert.NotNull(saved);
        // an imported state keeps no rule message: the copy's export encodes each rule on its own thread
        var copy = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), RefuseOutOfScope = false });
        copy.ImportState(saved!);
        Assert.Equal(saved, copy.ExportState());
    }

    [Fact]
    public void ASmallBatchEncodesOnTheSavesThread()
    {
        byte[]? saved = null;
        var backend = new WaitingBackend { Expected = 0 };
        var ep = NewEndpoint(new NfTablesOptions
        {
            Requester = p => (p, "nft"), RefuseOutOfScope = false, Backend = backend, StateChanged = s => saved = s,
        });
        backend.Endpoint = ep;
        byte[][] load = [AddTable(2, "t"), AddChain(3, "t", "c"), .. Enumerable.Range(0, 10).Select(i => AddRule(4, "t", "c", StateEncodeScaleTests.SameShape(i)))];
        Assert.Empty(ep.Process(Batch(load), Port));
        Assert.Equal(0, ep.RuleMessagesPrefilled);
        var copy = NewEndpoint(new NfTablesOptions { Requester = p => (p, "nft"), RefuseOutOfScope = false });
        copy.ImportState(saved!);
        Assert.Equal(saved, copy.ExportState());
    }
}
