using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Kernel.Tests;

/// <summary>
/// A scratch namespace plays the emulation: real nft changes it, its dump gives the desired objects
/// (handles shifted, as the emulation's own), and the placement makes a second namespace's kernel
/// hold the same; both `nft list ruleset` outputs must be identical.
/// </summary>
public class PlacementTests
{
    const ulong Shift = 1000;

    static IReadOnlyList<SourceTable> Desired(TestNetns emulation) => Rulesets.ShiftHandles(Rulesets.Read(emulation), Shift);

    static void Place(KernelPlacement placement, IReadOnlyList<SourceTable> desired)
    {
        placement.Prepare(desired);
        placement.Commit();
    }

    [Fact]
    public void PlacesARealisticRulesetIdentically()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        emulation.NftFile(Rulesets.Realistic);
        var desired = Desired(emulation);
        Assert.Contains(desired, t => t.Table.Family == 3); // arp
        Assert.Contains(desired, t => t.Table.Family == 7); // bridge
        Assert.Contains(desired.SelectMany(t => t.Sets), s => s.Set.SetFlags.HasFlag(NftSetFlags.Anonymous));

        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        Place(placement, desired);
        Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());

        // every caller handle maps to a kernel handle, and none is the caller's own number
        foreach (var t in desired)
            foreach (var c in t.Chains)
                foreach (var r in c.Rules)
                    Assert.NotNull(placement.KernelRuleHandle(t.Table.Family, t.Table.Name!, r.Handle!.Value));

        // placing the same content again sends nothing
        var again = placement.Prepare(desired);
        Assert.True(again.Batch.IsEmpty);
        placement.Commit();
        Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());

        // and removing everything leaves the kernel empty
        Place(placement, []);
        Assert.Equal("", kernel.ListRuleset().Trim());
    }

    [Fact]
    public void FollowsEveryKindOfChangeIncrementally()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small);
        var first = Desired(emulation);
        Place(placement, first);
        Assert.Equal(Tables(emulation.ListRuleset()), Tables(kernel.ListRuleset()));
        var icmp = Rulesets.Rule(first, "t", "input", 0).Handle!.Value;
        ulong icmpKernel = placement.KernelRuleHandle(1, "t", icmp)!.Value;

        string[][] steps =
        [
            ["add", "rule", "inet", "t", "input", "udp", "dport", "53", "counter", "accept"],
            ["insert", "rule", "inet", "t", "input", "tcp", "dport", "9", "drop"],
            ["add", "chain", "inet", "t", "extra"],
            ["add", "rule", "inet", "t", "extra", "ip", "saddr", "{ 10.1.0.1, 10.1.0.2 }", "counter", "return"],
            ["add", "rule", "inet", "t", "input", "jump", "extra"],
            ["add", "element", "inet", "t", "allowed", "{ 198.18.0.4 }"],
            ["delete", "element", "inet", "t", "allowed", "{ 198.18.0.3 }"],
            ["add", "set", "inet", "t", "more", "{ type inet_service; }"],
            ["add", "element", "inet", "t", "more", "{ 1, 2, 3 }"],
            ["add", "rule", "inet", "t", "side", "tcp", "dport", "@more", "counter"],
            ["chain", "inet", "t", "input", "{ policy drop; }"],
            ["flush", "chain", "inet", "t", "extra"],
            ["add", "table", "ip", "second"],
            ["add", "chain", "ip", "second", "c", "{ type filter hook output priority 10; }"],
            ["add", "rule", "ip", "second", "c", "counter"],
            // what nf_tables cannot change in place: the table is recreated in the same batch
            ["delete", "chain", "ip", "second", "c", ";", "add", "chain", "ip", "second", "c", "{ type filter hook output priority 20; }"],
        ];
        foreach (var step in steps)
        {
            emulation.Nft(step);
            Place(placement, Desired(emulation));
            Assert.True(Tables(emulation.ListRuleset()) == Tables(kernel.ListRuleset()), $"after `nft {string.Join(' ', step)}`:\n{emulation.ListRuleset()}\n---- kernel placement:\n{kernel.ListRuleset()}");
        }
        // a rule inserted in the middle, by position
        var now = Desired(emulation);
        var second = Rulesets.Rule(Rulesets.Read(emulation), "t", "input", 2).Handle!.Value;
        emulation.Nft("add", "rule", "inet", "t", "input", "position", second.ToString(), "meta", "mark", "7", "counter");
        Place(placement, Desired(emulation));
        Assert.Equal(Tables(emulation.ListRuleset()), Tables(kernel.ListRuleset()));

        // deletions: a rule by handle, the rule that jumps to a chain together with the chain, a set, a table
        var jump = Rulesets.Read(emulation).Single(t => t.Table.Name == "t").Chains.Single(c => c.Chain.Name == "input").Rules
            .Single(r => r.Expressions!.OfType<ImmediateExpr>().Any(i => i.Verdict?.Chain == "extra")).Handle!.Value;
        string[][] deletions =
        [
            ["delete", "rule", "inet", "t", "input", "handle", second.ToString()],
            ["delete", "rule", "inet", "t", "input", "handle", jump.ToString()],
            ["delete", "chain", "inet", "t", "extra"],
            ["flush", "chain", "inet", "t", "side"],
            ["delete", "set", "inet", "t", "more"],
            ["delete", "table", "ip", "second"],
        ];
        foreach (var step in deletions)
        {
            emulation.Nft(step);
            Place(placement, Desired(emulation));
            Assert.True(Tables(emulation.ListRuleset()) == Tables(kernel.ListRuleset()), $"after `nft {string.Join(' ', step)}`:\n{emulation.ListRuleset()}\n---- kernel placement:\n{kernel.ListRuleset()}");
        }
        // the first rule was never touched: same kernel rule all along
        Assert.Equal(icmpKernel, placement.KernelRuleHandle(1, "t", icmp));

        // a set deleted and defined again (another handle, other flags) cannot change in place: the table is recreated
        emulation.Nft("add", "set", "inet", "t", "late", "{ type inet_service; }");
        Place(placement, Desired(emulation));
        emulation.Nft("delete", "set", "inet", "t", "late", ";", "add", "set", "inet", "t", "late", "{ type inet_service; flags interval; }", ";",
            "add", "element", "inet", "t", "late", "{ 1-3 }");
        Place(placement, Desired(emulation));
        Assert.Equal(Tables(emulation.ListRuleset()), Tables(kernel.ListRuleset()));
        Assert.NotEqual(icmpKernel, placement.KernelRuleHandle(1, "t", icmp));

        // interval elements and verdict map elements, added and removed incrementally
        string[][] elements =
        [
            ["add", "element", "inet", "t", "late", "{ 10-20, 30 }"],
            ["delete", "element", "inet", "t", "late", "{ 1-3 }"],
            ["add", "map", "inet", "t", "vm", "{ type inet_service : verdict; }"],
            ["add", "element", "inet", "t", "vm", "{ 1 : accept, 2 : jump side, 3 : drop }"],
            ["add", "rule", "inet", "t", "input", "tcp", "dport", "vmap", "@vm"],
            ["delete", "element", "inet", "t", "vm", "{ 2 }"],
            ["add", "element", "inet", "t", "vm", "{ 4 : goto side }"],
        ];
        ulong recreated = placement.KernelRuleHandle(1, "t", icmp)!.Value;
        foreach (var step in elements)
        {
            emulation.Nft(step);
            Place(placement, Desired(emulation));
            Assert.True(Tables(emulation.ListRuleset()) == Tables(kernel.ListRuleset()), $"after `nft {string.Join(' ', step)}`:\n{emulation.ListRuleset()}\n---- kernel placement:\n{kernel.ListRuleset()}");
        }
        Assert.Equal(recreated, placement.KernelRuleHandle(1, "t", icmp));
    }

    /// <summary>
    /// The listing's tables in name order: a table the placement recreated (DELTABLE + NEWTABLE)
    /// comes last in the kernel's table list, while the emulation keeps its creation order.
    /// </summary>
    static string Tables(string listing) =>
        string.Join("", System.Text.RegularExpressions.Regex.Split(listing, "(?m)^(?=table )").Order(StringComparer.Ordinal));

    /// <summary>A listing with counter values blanked: the emulation's namespace sees no traffic.</summary>
    static string WithoutCounts(string listing) =>
        System.Text.RegularExpressions.Regex.Replace(listing, @"packets \d+ bytes \d+", "packets N bytes N");

    [Fact]
    public void PlacesLargeSetsAndManyRules()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        var text = new System.Text.StringBuilder("table inet big {\n set many {\n type ipv4_addr\n elements = { ");
        text.AppendJoin(", ", Enumerable.Range(0, 6000).Select(i => $"10.{i >> 8 & 255}.{i & 255}.1"));
        text.Append(" }\n }\n chain input {\n type filter hook input priority 0; policy accept;\n ip saddr @many counter drop\n");
        for (int i = 0; i < 800; i++) text.Append($" tcp dport {1000 + i} ip saddr {{ 10.20.{i >> 8}.{i & 255}, 10.21.{i >> 8}.{i & 255} }} counter accept\n");
        text.Append(" }\n}\n");
        emulation.NftFile(text.ToString());
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        var prepared = placement.Prepare(Desired(emulation));
        Assert.True(prepared.Batch.Messages.Count(m => m.Type == NftMsgType.NewSetElem && m.Description.Contains("many")) > 1); // cut into chunks
        placement.Commit();
        Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());
    }

    /// <summary>
    /// A commit's deleted rules come back as the kernel's DELRULE notifications with the counts they had at the commit
    /// (<see cref="KernelPlacement.Deleted"/>); a commit deleting more rules than surely fit the receive buffer beside the
    /// acks is not echoed (an overrun would lose the acks and a committed batch would read as failed), and still commits.
    /// </summary>
    [Fact]
    public void DeletionsAreEchoedWithTheirFinalCountsUnlessTooManyToEcho()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        emulation.NftFile("""
            table ip small {
                counter c { packets 7 bytes 70 }
                chain x {
                    counter packets 3 bytes 30
                }
            }
            """);
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        var desired = Desired(emulation);
        var rule = Rulesets.Rule(desired, "small", "x", 0);
        Place(placement, desired);
        Place(placement, []);
        var deleted = Assert.IsType<KernelCounters>(placement.Deleted);
        Assert.Equal((3ul, 30ul), (deleted.Rule(2, "small", rule.Handle!.Value, 0)!.Packets, deleted.Rule(2, "small", rule.Handle!.Value, 0)!.Bytes));
        // this kernel's DELOBJ notification names the object but dumps no NFTA_OBJ_DATA (nf_tables_fill_obj_info): a
        // named counter or quota leaving the kernel has no final count, its caller keeps the one read before the commit
        var obj = deleted.Object(2, "small", (uint)NftObjectType.Counter, "c");
        Assert.Null(obj?.Packets);

        var text = new System.Text.StringBuilder("table ip big {\n chain x {\n");
        for (int i = 0; i <= KernelPlacement.MaxEchoedRules; i++) text.Append($" tcp dport {i + 1} counter\n");
        emulation.Nft("delete", "table", "ip", "small");
        emulation.NftFile(text.Append(" }\n}\n").ToString());
        Place(placement, Desired(emulation));
        Place(placement, []);
        Assert.Null(placement.Deleted);
        Assert.Equal("", kernel.ListRuleset().Trim());
    }

    /// <summary>
    /// A named counter BPF takes over is kept in the kernel commit that deletes its rules, alone in its table, and deleted by a
    /// second kernel transaction once read (bpfilterd's LingeringObjects). A daemon dying between the two restarts from the
    /// state of the commit before: its adoption finds the table holding the object alone, a part of that state
    /// (<see cref="HeldPart"/>), and its first transaction deletes it (nothing placed there) or adds the rest in place
    /// (placed again): the kernel never holds two copies of the object, nor one no placement knows.
    /// </summary>
    [Fact]
    public void AnObjectKeptForTheReadBetweenTwoCommitsIsRemovedByTheNextDaemonsFirstTransaction()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        emulation.NftFile("""
            table ip t {
                counter c { packets 7 bytes 70 }
                chain x {
                    counter name "c"
                }
            }
            """);
        var desired = Desired(emulation);
        using (var socket = kernel.Socket())
        {
            var placement = new KernelPlacement(socket);
            Place(placement, desired);
            // the first transaction: the rules go, the object stays alone in its table for the read
            Place(placement, [desired[0] with { Chains = [] }]);
            var kept = kernel.ListRuleset();
            Assert.DoesNotContain("chain x", kept);
            Assert.Contains("counter c", kept);
            // the daemon dies here, before the second transaction
        }
        foreach (var placedAgain in new[] { true, false })
        {
            using var socket = kernel.Socket();
            var next = new KernelPlacement(socket);
            Assert.Equal((1, 0), next.Adopt(desired));
            Place(next, placedAgain ? desired : []);
            var listed = kernel.ListRuleset();
            if (!placedAgain) Assert.Equal("", listed.Trim());
            else
            {
                Assert.Single(System.Text.RegularExpressions.Regex.Matches(listed, @"counter c \{"));
                Assert.Contains("packets 7 bytes 70", listed);
                Assert.Contains("chain x", listed);
                // left as the first transaction of the dead daemon left it, for the second round
                Place(next, [desired[0] with { Chains = [] }]);
            }
        }
    }

    /// <summary>Table ip t: chain x counts and spends a quota, chain y names counter c; <paramref name="p"/> sets their state.</summary>
    static string KeptAndMoved(int p) => $$"""
        table ip t {
            counter c { packets {{p + 4}} bytes {{(p + 4) * 10}} }
            chain x {
                counter packets {{p}} bytes {{p * 10}} quota 1000 bytes used {{p * 100}} bytes
            }
            chain y {
                counter name "c"
            }
        }
        """;

    /// <summary>
    /// The kernel commit that moves chain y to BPF, keeping its counter c for the read after it, is live; then the daemon
    /// dies, before its second transaction (<paramref name="secondFailed"/> false: the restart's state is the one before
    /// the commit, with y in the kernel) or after a second transaction that failed (true: the state is the commit's, c
    /// unlisted). The restart's state holds other values than the kernel's (what the kernel counted since it was
    /// exported). Chain x, which stayed in the kernel, keeps its own counter and quota; c is placed once, with its final
    /// count, or deleted. Before HeldPart the table was stale and recreated from the state's values: x's counter and
    /// quota went back to them.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ADaemonDyingBetweenTheTwoKernelTransactionsLeavesTheChainsTheKernelKeptTheirOwnState(bool secondFailed)
    {
        using var emulation = new TestNetns("emu");
        using var state = new TestNetns("sta");
        using var kernel = new TestNetns("krn");
        emulation.NftFile(KeptAndMoved(3));
        state.NftFile(KeptAndMoved(0));
        var desired = Desired(emulation);
        var moved = desired[0] with { Chains = [.. desired[0].Chains.Where(c => c.Name != "y")] };
        using (var socket = kernel.Socket())
        {
            var placement = new KernelPlacement(socket);
            Place(placement, desired);
            Place(placement, [moved]); // y goes, c stays for the read
        }
        var saved = Desired(state);
        if (secondFailed) saved = [saved[0] with { Chains = [.. saved[0].Chains.Where(c => c.Name != "y")], Objects = [] }];
        using (var socket = kernel.Socket())
        {
            var next = new KernelPlacement(socket);
            Assert.Equal((1, 0), next.Adopt(saved));
            Place(next, saved);
        }
        var listed = kernel.ListRuleset();
        Assert.Contains("counter packets 3 bytes 30 quota 1000 bytes used 300 bytes", listed);
        if (secondFailed)
        {
            Assert.DoesNotContain("counter c", listed);
            Assert.DoesNotContain("chain y", listed);
        }
        else
        {
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(listed, @"counter c \{"));
            Assert.Contains("packets 7 bytes 70", listed);
            Assert.Contains("chain y", listed);
        }
    }

    static int CounterIndex(Rule r) => r.Expressions!.ToList().FindIndex(e => e is CounterExpr);

    [Fact]
    public void CountersAreReadByCallerHandleAndCarriedAcrossTransitions()
    {
        using var net = new VethPair("cnt");
        using var emulation = new TestNetns("emu");
        using var socket = net.Firewall.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small + "\n" + """
            table inet t {
                counter pings { }
                chain input {
                    ip protocol icmp counter name pings
                }
            }
            """);
        var desired = Desired(emulation);
        Place(placement, desired);
        var icmp = Rulesets.Rule(desired, "t", "input", 0);
        var allowed = Rulesets.Rule(desired, "t", "input", 1);
        ulong h = icmp.Handle!.Value;
        Assert.True(h > Shift);
        Assert.NotEqual(h, placement.KernelRuleHandle(1, "t", h));

        Assert.True(net.Ping(3));
        var c = placement.ReadCounters();
        Assert.Equal(3ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Packets);
        Assert.Equal(3 * 84ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Bytes); // 84-byte echo requests at the ip layer
        Assert.Equal(3ul, c.Rule(1, "t", allowed.Handle!.Value, CounterIndex(allowed))!.Packets);
        Assert.Equal(3ul, c.Object(1, "t", (uint)NftObjectType.Counter, "pings")!.Packets);
        Assert.DoesNotContain(c.Rules, r => r.RuleHandle < Shift);

        // incremental: the counted rule stays the same kernel rule
        emulation.Nft("add", "rule", "inet", "t", "input", "udp", "dport", "53", "accept");
        Place(placement, Desired(emulation));
        c = placement.ReadCounters();
        Assert.Equal(3ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Packets);

        // a change nf_tables cannot make in place (table flags) recreates the table: counters come along
        emulation.Nft("add", "table", "inet", "t", "{ flags dormant; }");
        var dormant = Desired(emulation);
        Assert.Equal(1u, dormant.Single(t => t.Table.Name == "t").Table.Flags);
        Place(placement, dormant);
        Assert.Equal(WithoutCounts(emulation.ListRuleset()), WithoutCounts(net.Firewall.ListRuleset())); // the kernel counted real traffic
        c = placement.ReadCounters();
        Assert.Equal(3ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Packets);
        Assert.Equal(3 * 84ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Bytes);
        Assert.Equal(3ul, c.Object(1, "t", (uint)NftObjectType.Counter, "pings")!.Packets);

        // awake again (flags cleared), and counting on from the carried values
        var awake = dormant.Select(t => t.Table.Name == "t" ? t with { Table = t.Table with { Flags = 0 } } : t).ToList();
        Place(placement, awake);
        Assert.True(net.Ping(2));
        c = placement.ReadCounters();
        Assert.Equal(5ul, c.Rule(1, "t", h, CounterIndex(icmp))!.Packets);
        Assert.Equal(5ul, c.Object(1, "t", (uint)NftObjectType.Counter, "pings")!.Packets);
    }

    [Fact]
    public void ARefusedTransitionLeavesThePreviousState()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small);
        var desired = Desired(emulation);
        Place(placement, desired);
        string before = kernel.ListRuleset();
        uint gen = socket.GetGeneration();

        // a new rule jumping to a chain nobody has, next to a harmless new rule
        var t = desired.Single();
        var input = t.Chains.Single(c => c.Chain.Name == "input");
        var good = new Rule { Family = 1, Table = "t", Chain = "input", Handle = 5000, Expressions = [new CounterExpr()] };
        var bad = new Rule
        {
            Family = 1, Table = "t", Chain = "input", Handle = 5001,
            Expressions = [new ImmediateExpr(NftRegisters.Verdict, new VerdictData(Verdict.JumpTo("nowhere")))],
        };
        var broken = new[] { t with { Chains = t.Chains.Select(c => c == input ? c with { Rules = [.. c.Rules, good, bad] } : c).ToList() } };
        var e = Assert.Throws<KernelNfTablesException>(() => placement.Prepare(broken));
        var err = Assert.Single(e.Errors);
        Assert.Equal(Errno.ENOENT, err.Errno);
        Assert.Contains("handle 5001", err.Description);
        Assert.Equal(5001ul, err.RuleHandle);
        Assert.False(placement.HasPending);
        Assert.Equal(before, kernel.ListRuleset());
        Assert.Equal(gen, socket.GetGeneration());

        // the same batch sent for real is refused whole by the kernel: nothing of it applies
        var batch = new KernelBatch()
            .Add(NftMsgType.NewRule, 1, good with { Handle = null }, "good", NlmFlags.Create | NlmFlags.Append)
            .Add(NftMsgType.NewRule, 1, bad with { Handle = null }, "bad", NlmFlags.Create | NlmFlags.Append);
        var result = socket.SendBatch(batch, commit: true);
        Assert.False(result.Succeeded);
        Assert.Equal(1, result.Errors.Single().Index);
        Assert.Equal(before, kernel.ListRuleset());

        // deleting a chain a kept rule still jumps to: refused (EBUSY), blamed on the chain
        var noSide = new[] { t with { Chains = t.Chains.Where(c => c.Chain.Name != "side").ToList() } };
        e = Assert.Throws<KernelNfTablesException>(() => placement.Prepare(noSide));
        Assert.Contains(e.Errors, x => x.Description!.Contains("chain inet t side"));
        Assert.Equal(before, kernel.ListRuleset());

        // and the placement still works afterwards
        emulation.Nft("add", "rule", "inet", "t", "side", "udp", "dport", "1", "drop");
        Place(placement, Desired(emulation));
        Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());
    }

    [Fact]
    public void PrepareThenAbortChangesNothing()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small);
        Place(placement, Desired(emulation));
        string before = kernel.ListRuleset();
        uint gen = socket.GetGeneration();

        emulation.Nft("add", "rule", "inet", "t", "input", "tcp", "dport", "25", "drop");
        emulation.Nft("delete", "rule", "inet", "t", "input", "handle",
            Rulesets.Rule(Rulesets.Read(emulation), "t", "input", 3).Handle!.Value.ToString(), ";", "delete", "chain", "inet", "t", "side");
        var next = Desired(emulation);
        var prepared = placement.Prepare(next);
        Assert.False(prepared.Batch.IsEmpty);
        Assert.Equal(before, kernel.ListRuleset());   // validated, not applied
        Assert.Equal(gen, socket.GetGeneration());    // the kernel aborted it
        Assert.Throws<InvalidOperationException>(() => placement.Prepare(next));
        placement.Abort();
        Assert.Equal(before, kernel.ListRuleset());
        Assert.Throws<InvalidOperationException>(() => placement.Commit());

        Place(placement, next);
        Assert.Equal(emulation.ListRuleset(), kernel.ListRuleset());
    }

    [Fact]
    public void ACommitIsRefusedWhenTheKernelChangedSincePrepare()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small);
        placement.Prepare(Desired(emulation));
        kernel.Nft("add", "table", "ip", "intruder");
        var e = Assert.Throws<KernelNfTablesException>(() => placement.Commit());
        Assert.Equal(Errno.ERESTART, e.Errno);
        Assert.Equal("table ip intruder {\n}", kernel.ListRuleset().Trim());
    }

    [Fact]
    public void ASetThePacketPathWritesIsDiffedFromTheTransactionsOwnChanges()
    {
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile("table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\tflags dynamic\n\t\telements = { 10.0.0.1 }\n\t}\n}\n");
        Place(placement, Desired(emulation));
        kernel.Nft("add", "element", "ip", "t", "s", "{ 10.0.0.2 }"); // what a packet adds: never placed
        static bool Is(SetElement e, byte last) => e.Key is ValueData { Value: [10, 0, 0, var b] } && b == last;

        // the transaction deletes the packet's element (the engine read it from the kernel) and adds one
        emulation.Nft("add", "element", "ip", "t", "s", "{ 10.0.0.3 }");
        var next = Desired(emulation);
        var added = next.Single().Sets.Single().Elements.Where(e => Is(e, 3)).ToList();
        placement.Prepare(next, [new PacketPathSet(2, "t", "s", added, [new SetElement { Key = new ValueData([10, 0, 0, 2]) }])]);
        placement.Commit();
        Assert.Equal(Tables(emulation.ListRuleset()), Tables(kernel.ListRuleset()));

        // an element a packet added, which the engine's state now holds, is not sent again by a transaction that does not change it
        kernel.Nft("add", "element", "ip", "t", "s", "{ 10.0.0.4 }");
        emulation.Nft("add", "element", "ip", "t", "s", "{ 10.0.0.4 }");
        Assert.True(placement.Prepare(Desired(emulation), [new PacketPathSet(2, "t", "s", [], [])]).Batch.IsEmpty);
        placement.Abort();
    }

    [Fact]
    public void AnElementTheKernelsGcAlreadyRemovedIsDeletedWithoutAnError()
    {
        // the emulation drops an expired element (a full set taking a new one, see ElementOps.Collected) after
        // the kernel's own GC has taken it out: DELSETELEM would fail with ENOENT and refuse the whole batch
        using var emulation = new TestNetns("emu");
        using var kernel = new TestNetns("krn");
        using var socket = kernel.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile("table ip t {\n\tset s {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 10.0.0.1 timeout 1s, 10.0.0.2 }\n\t}\n}\n");
        var first = Desired(emulation);
        Place(placement, first);
        Assert.Contains("10.0.0.1", kernel.ListRuleset());
        Thread.Sleep(3000);
        Assert.DoesNotContain("10.0.0.1", kernel.ListRuleset());
        // what the engine commits: the set without the expired element and with a new one
        emulation.Nft("add", "element", "ip", "t", "s", "{ 10.0.0.3 }");
        var next = Desired(emulation);
        Assert.DoesNotContain(next.Single().Sets.Single().Elements, e => e.Key is ValueData { Value: [10, 0, 0, 1] });
        Place(placement, next);
        Assert.Equal(Tables(emulation.ListRuleset()), Tables(kernel.ListRuleset()));
    }

    [Fact]
    public void RollbackRestoresThePreviousPlacementWithItsCounters()
    {
        using var net = new VethPair("rb");
        using var emulation = new TestNetns("emu");
        using var socket = net.Firewall.Socket();
        var placement = new KernelPlacement(socket);
        emulation.NftFile(Rulesets.Small);
        Place(placement, Desired(emulation));
        Assert.True(net.Ping(2));
        string before = net.Firewall.ListRuleset();
        Assert.Contains("packets 2 bytes 168", before);

        emulation.Nft("flush", "chain", "inet", "t", "input");
        emulation.Nft("add", "rule", "inet", "t", "input", "icmp", "type", "echo-request", "drop");
        emulation.Nft("add", "table", "ip", "other");
        Place(placement, Desired(emulation));
        Assert.Equal(WithoutCounts(emulation.ListRuleset()), WithoutCounts(net.Firewall.ListRuleset())); // the kernel counted real traffic
        Assert.False(net.Ping(1));

        placement.RollbackLastCommit();
        Assert.Equal(before, net.Firewall.ListRuleset());
        Assert.False(placement.CanRollback);
        Assert.True(net.Ping(1));
        Assert.Contains("packets 3 bytes 252", net.Firewall.ListRuleset());
    }
}
