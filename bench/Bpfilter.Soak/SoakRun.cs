using System.Diagnostics;
using Bpfilter.Testing;

namespace Bpfilter.Soak;

/// <summary>
/// The soak loop. Every transaction goes to the oracle's kernel and, through bfnft, to bpfilterd: exit
/// status and messages must be equal, and equal to the model's prediction (a failing batch fails);
/// then both `nft -a list ruleset` must be equal (handles included, counter values aside: the oracle
/// sees no traffic) and bpfilterd's counters must be what the model predicts. Every few transactions
/// a round of datagrams goes to every port of the pool: each rule's counter must move by exactly the
/// model's amount and each port receive all or none of its datagrams. A background flood runs all
/// along: its dropped port must never receive anything and the fixed rule's counter never go back.
/// </summary>
public sealed class SoakRun(SoakOptions options, TextWriter log)
{
    const string FixedTable = """
        table inet soak_fixed {
            chain in {
                type filter hook input priority 250; policy accept;
                udp dport 40000 counter drop comment "fixed"
            }
        }

        """;

    readonly Random _random = new(options.Seed);
    readonly Dictionary<int, long> _expected = [];
    readonly List<string> _history = [];
    SoakRuleset _model = SoakRuleset.Empty;
    Dictionary<int, long> _handles = [];
    long _fixedPackets, _checks, _packets;
    int _transactions, _failing, _refusedByNft, _restarts;

    public SoakResult Run()
    {
        using var topology = new SoakTopology();
        var generator = new TransactionGenerator(_random, SoakTopology.Device, FixedTable, options.KernelPlacedRules);
        string? failure = null;
        UdpTraffic? traffic = null;
        try
        {
            Apply(topology, new SoakTransaction(FixedTable, "fixed table", SoakRuleset.Empty));
            traffic = new UdpTraffic(topology, TransactionGenerator.Pool); // the flood starts once its port is dropped
            var clock = Stopwatch.StartNew();
            var lastReport = TimeSpan.Zero;
            while (clock.Elapsed < options.Duration)
            {
                var tx = generator.Next(_model, _handles);
                Apply(topology, tx);
                if (_transactions % 4 == 0) Traffic(topology, traffic);
                if (options.Restarts && _random.Next(25) == 0) Restart(topology);
                if (traffic.Received(UdpTraffic.DroppedPort) != 0)
                    throw new SoakFailure($"{traffic.Received(UdpTraffic.DroppedPort)} datagrams to the dropped port {UdpTraffic.DroppedPort} arrived");
                if (clock.Elapsed - lastReport > TimeSpan.FromSeconds(30))
                {
                    lastReport = clock.Elapsed;
                    log.WriteLine($"  {clock.Elapsed:mm\\:ss} {_transactions} transactions, {_restarts} restarts, {_packets} packets, " +
                        $"{_model.Tables.Count} tables, {_model.AllChains.Count()} chains, {_model.AllChains.Sum(x => x.Chain.Rules.Count)} rules");
                }
            }
            Traffic(topology, traffic);
            Check(traffic.Received(UdpTraffic.OpenPort) > 0, $"the flood's open port {UdpTraffic.OpenPort} received nothing: no traffic flowed");
        }
        catch (SoakFailure e)
        {
            failure = e.Message;
            log.WriteLine($"FAILED after {_transactions} transactions: {e.Message}");
            var saved = Path.Combine(Path.GetTempPath(), $"bpfilter-soak-{options.Seed}-bpfilterd.log");
            File.WriteAllText(saved, topology.Daemon.Log);
            log.WriteLine($"--- bpfilterd log (tail; all of it in {saved})");
            log.WriteLine(string.Join('\n', topology.Daemon.Log.Split('\n').TakeLast(20)));
            log.WriteLine("--- transactions");
            log.WriteLine(string.Join('\n', _history));
        }
        finally
        {
            traffic?.Dispose();
        }
        return new SoakResult(_transactions, _failing, _refusedByNft, _restarts, _packets, traffic?.Flooded ?? 0, _checks, failure);
    }

    void Check(bool condition, string message)
    {
        _checks++;
        if (!condition) throw new SoakFailure(message);
    }

    void Apply(SoakTopology topology, SoakTransaction tx)
    {
        var kernel = topology.Kernel(["-f", "-"], tx.Script);
        var daemon = topology.Bpfilterd(["-f", "-"], tx.Script);
        var what = $"transaction {_transactions + 1} ({tx.Summary}):\n{tx.Script}";
        _history.Add($"# {what}");
        Check(kernel.Exit == daemon.Exit && kernel.Stderr == daemon.Stderr && kernel.Stdout == daemon.Stdout,
            $"kernel and bpfilterd answer differently to {what}\n--- kernel\n{kernel}\n--- bpfilterd\n{daemon}");
        // a batch the model expected to fail must fail; one it expected to pass may still be refused by nft
        // itself (its cache rules, e.g. interval set elements next to a flush in one batch): then it is a
        // failing batch like the others, and the listings show it changed nothing
        Check(kernel.Exit != 0 || !tx.MustFail, $"the kernel accepted {what}\n{kernel}");
        _transactions++;
        if (kernel.Exit != 0) _failing++;
        if (kernel.Exit != 0 && !tx.MustFail) _refusedByNft++;
        if (kernel.Exit == 0)
        {
            if (tx.Script.StartsWith("flush ruleset", StringComparison.Ordinal)) _fixedPackets = 0;
            _model = tx.After!;
        }
        CompareListings(topology, what);
    }

    /// <summary>Kernel and bpfilterd list the same ruleset; bpfilterd's counters are the model's.</summary>
    string CompareListings(SoakTopology topology, string after)
    {
        var kernel = topology.Kernel(["-a", "list", "ruleset"]);
        var daemon = topology.Bpfilterd(["-a", "list", "ruleset"]);
        Check(kernel.Exit == 0 && daemon.Exit == 0, $"list ruleset failed after {after}\n{kernel}\n{daemon}");
        Check(SoakListing.WithoutCounters(kernel.Stdout) == SoakListing.WithoutCounters(daemon.Stdout),
            $"listings differ after {after}\n--- kernel\n{kernel.Stdout}\n--- bpfilterd\n{daemon.Stdout}");
        _handles = SoakListing.Handles(kernel.Stdout);
        var modelRules = _model.AllChains.SelectMany(x => x.Chain.Rules.Select(r => r.Id)).Order().ToList();
        Check(modelRules.SequenceEqual(_handles.Keys.Order()),
            $"the model's rules [{string.Join(' ', modelRules)}] are not the listed ones [{string.Join(' ', _handles.Keys.Order())}] after {after}\n{kernel.Stdout}");
        var counters = SoakListing.Counters(daemon.Stdout);
        foreach (var id in modelRules)
        {
            var expected = _expected.GetValueOrDefault(id);
            Check(counters.TryGetValue(id, out var c) && c.Packets == expected && c.Bytes == expected * UdpTraffic.PacketBytes,
                $"rule r{id} counted {c} where the model says {expected} packets, after {after}\n{daemon.Stdout}");
        }
        if (SoakListing.Fixed(daemon.Stdout) is { } f)
        {
            Check(f.Packets >= _fixedPackets, $"the fixed rule's counter went back from {_fixedPackets} to {f.Packets} after {after}");
            _fixedPackets = f.Packets;
        }
        else Check(false, $"the fixed table is missing after {after}\n{daemon.Stdout}");
        return daemon.Stdout;
    }

    /// <summary>A known number of datagrams to every port of the pool; counters and deliveries as the model predicts.</summary>
    void Traffic(SoakTopology topology, UdpTraffic traffic)
    {
        var plan = TransactionGenerator.Pool.ToDictionary(p => p, _ => _random.Next(4));
        var before = plan.Keys.ToDictionary(p => p, traffic.Received);
        var expectation = TrafficModel.Predict(_model, plan);
        foreach (var (port, n) in plan) traffic.Send(port, n);
        _packets += plan.Values.Sum();
        var wait = Stopwatch.StartNew();
        bool Arrived() => plan.All(kv => !expectation.Delivered[kv.Key] || traffic.Received(kv.Key) - before[kv.Key] >= kv.Value);
        while (!Arrived() && wait.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(10);
        Thread.Sleep(100); // time for a datagram that should have been dropped to show up
        foreach (var (port, n) in plan)
        {
            var got = traffic.Received(port) - before[port];
            var want = expectation.Delivered[port] ? n : 0;
            Check(got == want, $"port {port}: {got} of {n} datagrams arrived, the model says {want}\n{Describe()}");
        }
        foreach (var (id, n) in expectation.RulePackets) _expected[id] = _expected.GetValueOrDefault(id) + n;
        CompareListings(topology, $"a round of {plan.Values.Sum()} datagrams");
    }

    /// <summary>kill -9 (one in four: SIGTERM) and restart: the same ruleset, the same counters.</summary>
    void Restart(SoakTopology topology)
    {
        var before = topology.Bpfilterd(["-a", "list", "ruleset"]).Stdout;
        var term = _random.Next(4) == 0;
        if (term) topology.Daemon.Terminate(); else topology.Daemon.Kill();
        topology.Daemon.Restart();
        _restarts++;
        var after = CompareListings(topology, $"restart {_restarts} ({(term ? "SIGTERM" : "SIGKILL")})");
        Check(SoakListing.WithoutCounters(before) == SoakListing.WithoutCounters(after),
            $"restart {_restarts} changed the listing\n--- before\n{before}\n--- after\n{after}");
    }

    string Describe() => string.Join('\n', _model.PacketPath.Select(x =>
        $"{x.Table.Id} {x.Chain.Name} {x.Chain.Hook} {x.Chain.Priority}: " +
        string.Join("; ", x.Chain.Rules.Select(r => $"r{r.Id} {(r.Match.SetName ?? string.Join(',', r.Match.Ports))} {r.Verdict}"))));
}
