using Bpfilter.Integration.Tests.Harness;
using Bpfilter.Integration.Tests.Robustness;
using Xunit.Abstractions;

namespace Bpfilter.Integration.Tests;

/// <summary>
/// Malformed input against a running daemon. Every request is also sent to the kernel in a namespace
/// of its own, which tells what a correct answer looks like.
/// </summary>
public class RobustnessTests(ITestOutputHelper output)
{
    const int Seed = 20260224;
    const int MutatedRequests = 3600;
    const uint PortId = 4242;
    /// <summary>Every this many requests both sides get a flush ruleset, so that state drift stays small.</summary>
    const int FlushEvery = 50;

    /// <summary>The unmutated corpus is real: the kernel accepts every message of it.</summary>
    [Fact]
    public void BaseRequestsAreAcceptedByTheKernel()
    {
        using var ns = NetNs.Create(withDevices: false);
        using var kernel = new KernelNetlinkSocket(ns);
        foreach (var (name, bytes) in new RequestCorpus().Build("base"))
        {
            var reply = ReplyCheck.Parse(kernel.Exchange(bytes), out var problem);
            Assert.True(reply != null, $"{name}: kernel reply does not parse: {problem}");
            Assert.False(reply!.HasFailure, $"{name}: the kernel refused a base request: {reply}");
            int acked = AckedMessages(bytes);
            Assert.True(reply.Errnos.Count == acked, $"{name}: {acked} messages ask for an ACK, the kernel sent {reply}");
            Assert.True(acked > 0 || reply.Done > 0, $"{name}: the kernel sent neither ACK nor dump: {reply}");
            // The daemon-side test relies on the same corpus: log what each request is.
            output.WriteLine($"{name}: {bytes.Length} bytes, kernel: {reply}");
        }
    }

    public static TheoryData<string> MalformedRuleCases()
    {
        var d = new TheoryData<string>();
        foreach (var k in MalformedRules.Cases.Keys) d.Add(k);
        return d;
    }

    /// <summary>
    /// One wrong expression in an otherwise valid batch: the kernel refuses that rule (checked here
    /// too), so the daemon must refuse it with the same errno and apply nothing of the batch.
    /// </summary>
    [Theory]
    [MemberData(nameof(MalformedRuleCases))]
    public void MalformedRulesAreRefusedLikeTheKernel(string name)
    {
        var request = new RequestCorpus().OneRule("m", MalformedRules.Cases[name]);
        using var kernelNs = NetNs.Create(withDevices: false);
        using var kernel = new KernelNetlinkSocket(kernelNs);
        var k = ReplyCheck.Parse(kernel.Exchange(request), out var kproblem);
        Assert.True(k != null, kproblem);
        var kernelErrno = k!.Errnos.LastOrDefault();
        Assert.True(kernelErrno != 0, $"{name}: the kernel accepted it ({k}); the case is wrong");

        Assert.True(RepoPaths.DaemonCommand != null, RepoPaths.MissingReason());
        using var daemonNs = NetNs.Create();
        using var daemon = DaemonProcess.Start(daemonNs);
        using var client = new DaemonClient(daemon.SocketPath);
        var d = ReplyCheck.Parse(client.Exchange(PortId, request), out var dproblem);
        Assert.True(d != null, $"{name}: daemon reply does not parse: {dproblem}");
        Assert.True(d!.Errnos.LastOrDefault() == kernelErrno,
            $"{name}: the kernel refused the rule with errno {kernelErrno} ({k}); the daemon answered {d}");
        // Nothing of the batch may remain: the table must not exist.
        var get = new RequestCorpus().Build("m").First(b => b.Name == "gettable").Bytes;
        var g = ReplyCheck.Parse(client.Exchange(PortId, get), out _);
        Assert.True(g != null && g.Errnos.SequenceEqual([Nft.Netlink.Errno.ENOENT]), $"{name}: after the refused batch, GETTABLE m answered {g}");
    }

    [Fact]
    public void MutatedRequestsNeverBreakTheDaemon()
    {
        var missing = RepoPaths.MissingReason();
        Assert.True(RepoPaths.DaemonCommand != null, missing);

        using var kernelNs = NetNs.Create(withDevices: false);
        using var kernel = new KernelNetlinkSocket(kernelNs);
        using var daemonNs = NetNs.Create();
        using var daemon = DaemonProcess.Start(daemonNs);
        using var client = new DaemonClient(daemon.SocketPath);

        var rng = new Random(Seed);
        var mutator = new Mutator(rng);
        var corpus = new RequestCorpus();
        var failures = new List<string>();
        var failureKinds = new Dictionary<string, int>();
        var infos = new List<string>();
        void Fail(string kind, string text)
        {
            failureKinds[kind] = failureKinds.GetValueOrDefault(kind) + 1;
            failures.Add(text);
        }
        int kernelErrors = 0, kernelDumps = 0, kernelSilent = 0, daemonSilent = 0, daemonErrors = 0, errnoDisagreements = 0;
        var perMutation = new Dictionary<string, int>();
        var kernelSilentPerMutation = new Dictionary<string, int>();

        for (int i = 0; i < MutatedRequests; i++)
        {
            if (i % FlushEvery == 0)
            {
                var flush = FlushRuleset((uint)i);
                kernel.Exchange(flush);
                client.Exchange(PortId, flush);
            }
            var bases = corpus.Build($"f{i % 7}");
            var others = bases.Select(b => b.Bytes).ToList();
            var (baseName, baseBytes) = bases[rng.Next(bases.Count)];
            var (mutation, bytes) = mutator.Mutate(baseBytes, others);
            perMutation[mutation] = perMutation.GetValueOrDefault(mutation) + 1;
            string what = $"#{i} {mutation} of {baseName} ({bytes.Length} bytes: {Convert.ToHexString(bytes.AsSpan(0, Math.Min(bytes.Length, 48)))}...)";
            string full = Convert.ToHexString(bytes);

            var k = ReplyCheck.Parse(kernel.Exchange(bytes), out var kproblem)
                    ?? throw new InvalidOperationException($"{what}: the kernel's own reply does not parse: {kproblem}");
            List<byte[]> datagrams;
            try
            {
                datagrams = client.Exchange(PortId, bytes);
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
            {
                Fail("no reply", $"{what}: no reply from the daemon: {e.Message}");
                break;
            }
            var d = ReplyCheck.Parse(datagrams, out var dproblem);
            if (d == null)
            {
                Fail("unparseable reply", $"{what}: daemon reply does not parse: {dproblem}");
                continue;
            }
            if (k.HasErrorMessage) kernelErrors++;
            else if (k.Done > 0) kernelDumps++;
            else
            {
                kernelSilent++;
                kernelSilentPerMutation[mutation] = kernelSilentPerMutation.GetValueOrDefault(mutation) + 1;
            }
            if (d.HasErrorMessage) daemonErrors++;
            else if (d.Done == 0) daemonSilent++;
            if (k.HasFailure && !d.HasFailure)
                Fail("accepted what the kernel refuses", $"{what}: the kernel refused it ({k}) but the daemon did not ({d})\n  request {full}");
            else if (k.HasErrorMessage && !d.HasErrorMessage)
                Fail("silent where the kernel answers", $"{what}: the kernel answered with NLMSG_ERROR ({k}), the daemon with none ({d})\n  request {full}");
            else if (k.Done > 0 && d.Done == 0 && !d.HasErrorMessage)
                Fail("no dump where the kernel dumps", $"{what}: the kernel answered with a dump ({k}), the daemon with neither dump nor error ({d})");
            else if (k.HasFailure && !k.Errnos.Where(e => e != 0).Order().SequenceEqual(d.Errnos.Where(e => e != 0).Order()))
            {
                errnoDisagreements++;
                infos.Add($"info {what}: both refused, kernel {k}, daemon {d}\n  request {full}");
            }
            if (!daemon.IsAlive)
            {
                Fail("daemon died", $"{what}: the daemon died:\n{daemon.Log}");
                break;
            }
        }

        output.WriteLine($"{MutatedRequests} mutated requests (seed {Seed}): the kernel answered {kernelErrors} with NLMSG_ERROR, " +
                         $"{kernelDumps} with a dump only, and ignored {kernelSilent}; the daemon answered {daemonErrors} with NLMSG_ERROR " +
                         $"and {daemonSilent} with neither NLMSG_ERROR nor a dump; " +
                         $"{errnoDisagreements} refused by both with different errnos");
        output.WriteLine("mutations (of which the kernel sent nothing for): " + string.Join(", ", perMutation.OrderBy(kv => kv.Key)
            .Select(kv => $"{kv.Key} {kv.Value} ({kernelSilentPerMutation.GetValueOrDefault(kv.Key)})")));
        // BFNT_FUZZ_REPORT=<file> keeps every failure with the whole request in hex, for diagnosis.
        var reportPath = Environment.GetEnvironmentVariable("BFNT_FUZZ_REPORT");
        if (!string.IsNullOrEmpty(reportPath)) File.WriteAllLines(reportPath, [.. failures, .. infos]);
        Assert.True(failures.Count == 0, $"{failures.Count} failures: " +
            string.Join(", ", failureKinds.Select(kv => $"{kv.Key} {kv.Value}")) + "\n" + string.Join("\n", failures.Take(30)));
        Assert.True(daemon.IsAlive, $"the daemon died:\n{daemon.Log}");

        // Afterwards an ordinary nft still works against the same daemon.
        var env = new Dictionary<string, string> { ["BFNFT_SOCKET"] = daemon.SocketPath };
        var bfnft = RepoPaths.RequireBfnft();
        var add = daemonNs.Exec(bfnft, ["add", "table", "ip", "ok"], env: env);
        Assert.True(add.Exit == 0, $"nft add table after the fuzzing: {add}");
        var list = daemonNs.Exec(bfnft, ["list", "table", "ip", "ok"], env: env);
        Assert.True(list.Exit == 0 && list.Stdout == "table ip ok {\n}\n", $"nft list table after the fuzzing: {list}");
        Assert.True(daemon.IsAlive, $"the daemon died:\n{daemon.Log}");
    }

    static int AckedMessages(byte[] request)
    {
        int n = 0;
        for (int off = 0; off + 16 <= request.Length;)
        {
            var h = Nft.Netlink.NlMsgHeader.Read(request.AsSpan(off));
            if (h.Has(Nft.Netlink.NlmFlags.Ack)) n++;
            off += Nft.Netlink.NetlinkLimits.Align((int)h.Length);
        }
        return n;
    }

    /// <summary>DELTABLE without a name in a batch: what `nft flush ruleset` sends.</summary>
    static byte[] FlushRuleset(uint seq)
    {
        var w = new Nft.Netlink.NetlinkWriter();
        var b = w.BeginNfMessage(0, 0, Nft.Netlink.NlmFlags.Request, seq, 0, 0, Nft.Netlink.Nfnl.SubsysNftables);
        w.EndMessage(b);
        var m = w.BeginNfMessage(Nft.Netlink.Nfnl.SubsysNftables, NfWire.DelTable, Nft.Netlink.NlmFlags.Request, seq, 0, NfWire.FamilyUnspec, 0);
        w.EndMessage(m);
        var e = w.BeginNfMessage(0, 0, Nft.Netlink.NlmFlags.Request, seq, 0, 0, Nft.Netlink.Nfnl.SubsysNftables);
        w.EndMessage(e);
        var bytes = w.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(b.Start + 4), Nft.Netlink.Nfnl.MsgBatchBegin);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(e.Start + 4), Nft.Netlink.Nfnl.MsgBatchEnd);
        return bytes;
    }
}
