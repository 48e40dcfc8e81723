using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using Bpfilter.Backend.Lowering;
using Bpfilter.Testing;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Regular chains as BPF-to-BPF subprograms (ProgramCompiler.Subprograms.cs): the same verdicts and counters as
/// the inlined code generation (<c>inlineRegularChains: true</c>), one copy of a chain however often it is jumped to.
/// </summary>
public class SubprogramTests
{
    static byte[] Tcp4(string src, ushort dport) => PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(40000, dport, 0x02);

    static CompiledProgram Compile(Ruleset rs, bool inline, LoweringPipeline? lowering = null, bool staticSubprograms = false) =>
        ProgramCompiler.Compile(rs, rs.BaseChains.Items, ipv6: false, lowering, inlineRegularChains: inline, staticSubprograms: staticSubprograms);

    /// <summary>Instructions the verifier processed loading the program and each of its segments.</summary>
    static long Verified(LoadedProgram p) => p.Segments.Prepend(p.Program).Sum(s => (long)BpfInfo.VerifiedInstructions(s.Fd.Value)!.Value);

    /// <summary>A chain of <paramref name="size"/> counted drop rules and <paramref name="jumps"/> base rules jumping to it (one port each).</summary>
    static Ruleset HundredRuleChain(int jumps, int size = 100)
    {
        var sub = new Chain("t/sub", Enumerable.Range(0, size)
            .Select(i => Counted(1000 + (ulong)i, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, Value.FromBytes(10, 1, 0, (byte)i)))).ToValueList());
        var rules = Enumerable.Range(0, jumps)
            .Select(i => new Rule(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(1000 + i)))), Verdict.Jump("t/sub"), (ulong)i)).ToArray();
        return Ruleset(Xdp, Verdict.Accept, rules, [sub]);
    }

    static int Calls(CompiledProgram p) => p.Instructions.Count(i => i.IsLocalCall) + p.Segments.Sum(s => s.Count(i => i.IsLocalCall));

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("nf")]
    public void JumpReturnGotoAndVerdictsInsideSubchainsAsNfTables(string hook)
    {
        // base: jump a; tcp dport 23 goto b; ip saddr .9 accept; policy drop
        // a: tcp dport 22 return; ip saddr .1 accept; ip saddr .2 drop; jump c; (end: back to base)
        // b: ip saddr .3 accept; (end: returns from base = policy)
        // c: ip saddr .4 drop; tcp dport 80 return; ip saddr .5 accept
        var h = hook switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };
        var a = new Chain("t/a", ValueList.Of(
            new Rule(Verdict.Return, Matcher.Eq(Fields.Tcp.Dport, U16(22))),
            Counted(1, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1"))),
            Counted(2, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.2"))),
            new Rule(Verdict.Jump("t/c"))));
        var b = new Chain("t/b", ValueList.Of(Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.3")))));
        var c = new Chain("t/c", ValueList.Of(
            Counted(3, Verdict.Drop, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.4"))),
            new Rule(Verdict.Return, Matcher.Eq(Fields.Tcp.Dport, U16(80))),
            Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.5")))));
        var rs = Ruleset(h, Verdict.Drop, [
            new Rule(Verdict.Jump("t/a")),
            new Rule(Verdict.Goto("t/b"), Matcher.Eq(Fields.Tcp.Dport, U16(23))),
            Counted(4, Verdict.Accept, Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.9"))),
        ], [a, b, c]);
        var compiled = Compile(rs, inline: false, LoweringPipeline.None);
        Assert.Equal(3, Calls(compiled)); // a and b from the base chain, c from a
        using var p = LoadedProgram.Load(compiled);
        uint accept = hook switch { "xdp" => XdpPass, "tc" => TcOk, _ => NfAccept }, drop = hook switch { "xdp" => XdpDrop, "tc" => TcShot, _ => NfDrop };
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.1", 80))); // accept inside a
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.2", 80))); // drop inside a
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.1", 22))); // a returns, nothing else: policy
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.9", 22))); // a returns, the next base rule accepts
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.4", 81))); // drop in c, two calls deep
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.5", 81))); // accept in c
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.9", 81))); // c and a fall through: base goes on
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.3", 23))); // goto b, accepted there
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.9", 23))); // goto b falls through: base returns = policy, not the next rule
        Assert.Equal(1UL, p.Counter(1).Packets);
        Assert.Equal(1UL, p.Counter(2).Packets);
        Assert.Equal(1UL, p.Counter(3).Packets);
        Assert.Equal(2UL, p.Counter(4).Packets);
    }

    [Fact]
    public void AHundredJumpsIntoAHundredRuleChainHoldOneCopyPerSegment()
    {
        var rs = HundredRuleChain(100);
        var called = Compile(rs, inline: false, LoweringPipeline.None, staticSubprograms: true);
        var inlined = Compile(rs, inline: true, LoweringPipeline.None);
        // Static subprograms: one copy of the chain per segment, not one per jump. The verifier still walks a static subprogram at every
        // call site and may keep each of its branches pending there (8192 at most), so the calls are spread over
        // segments as inlined code is; each segment holds the chain once.
        var segments = 1 + called.Segments.Length;
        var copies = called.Instructions.Concat(called.Segments.SelectMany(s => s)).Count(i => i.Labels.Contains("chain:t/sub/5"));
        Assert.Equal(segments, copies);
        Assert.True(inlined.InstructionCount > 10 * 100 * 100, $"{inlined.InstructionCount} instructions inlined");
        Assert.True(called.InstructionCount * 5 < inlined.InstructionCount, $"{called.InstructionCount} instructions, {inlined.InstructionCount} inlined");
        Assert.True(called.InstructionCount < 40 * (100 + segments * 100), $"{called.InstructionCount} instructions in {segments} segments");
        using var p = LoadedProgram.Load(called);
        Assert.Equal(XdpDrop, p.Run(Tcp4("10.1.0.42", 1099)));
        Assert.Equal(XdpPass, p.Run(Tcp4("10.1.1.42", 1099)));
        Assert.Equal(XdpPass, p.Run(Tcp4("10.1.0.42", 999)));
        Assert.Equal(1UL, p.Counter(1042).Packets);
        Assert.Equal(2UL, p.Counter(99).Packets);
    }

    [Fact]
    public void AGlobalChainIsVerifiedOnceSoAHundredJumpsFitOneSegment()
    {
        var (small, hundred) = (Compile(HundredRuleChain(100, size: 10), inline: false, LoweringPipeline.None),
            Compile(HundredRuleChain(100), inline: false, LoweringPipeline.None));
        Assert.Equal([true], hundred.Functions.Values);
        Assert.Empty(hundred.Segments); // static: 7 segments (the test above)
        using var p = LoadedProgram.Load(hundred);
        using var p10 = LoadedProgram.Load(small);
        Assert.Equal(XdpDrop, p.Run(Tcp4("10.1.0.42", 1099)));
        Assert.Equal(XdpPass, p.Run(Tcp4("10.1.1.42", 1099)));
        Assert.Equal(XdpPass, p.Run(Tcp4("10.1.0.42", 999)));
        Assert.Equal(1UL, p.Counter(1042).Packets);
        Assert.Equal(2UL, p.Counter(99).Packets);
        // 90 more rules in the chain cost the verifier their instructions once (each rule's match and miss), not once per call site
        var (v10, v100) = (Verified(p10), Verified(p));
        var rules = hundred.Functions.Keys.Single() is var entry ? hundred.Instructions.SkipWhile(i => !i.Labels.Contains(entry)).Count() : 0;
        Assert.True(v100 - v10 < 2 * rules, $"verified: {v10} with a 10-rule chain, {v100} with a 100-rule one of {rules} instructions");
        using var staticForm = LoadedProgram.Load(Compile(HundredRuleChain(100), inline: false, LoweringPipeline.None, staticSubprograms: true));
        Assert.True(Verified(staticForm) > 10 * v100, $"verified: {v100} global, {Verified(staticForm)} static");
    }

    [Fact]
    public void ChainsKeepingVerifierStateInTheFrameStayStaticALimitDoesNot()
    {
        // a classifier keeps vector pointers and its scan's counter in the frame: its chain, and the chain calling it, stay
        // static; a limit keeps its bucket pointer in R9, so its chain (and its caller) is global, as the plain one
        var limit = new LimitStatement(1, TimeSpan.FromMinutes(1), 2) { StateSlot = 0 };
        var limited = new Chain("t/limited", ValueList.Of(new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(limit), Verdict.Accept)));
        var outer = new Chain("t/outer", ValueList.Of(new Rule(Verdict.Jump("t/limited"), Matcher.Eq(Fields.Tcp.Dport, U16(80)))));
        var plain = new Chain("t/plain", ValueList.Of(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.66")))));
        var acl = new Chain("t/acl", Enumerable.Range(0, 20).Select(i => Counted(10 + (ulong)i, Verdict.Drop,
            Matcher.Prefix(Fields.Ip.Saddr, Value.FromBytes(10, (byte)i, 0, 0), 16), Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(1000 + i))))).ToValueList());
        var aclOuter = new Chain("t/aclouter", ValueList.Of(new Rule(Verdict.Jump("t/acl"), Matcher.Eq(Fields.Tcp.Sport, U16(40000)))));
        var rs = Ruleset(Xdp, Verdict.Drop, [new Rule(Verdict.Jump("t/plain")), new Rule(Verdict.Jump("t/aclouter")), new Rule(Verdict.Jump("t/outer"))],
            [limited, outer, plain, acl, aclOuter]);
        var compiled = Compile(rs, inline: false);
        Assert.Contains(compiled.Maps, m => m.Name == "cls:rules");
        Assert.Equal([("t/acl", false), ("t/aclouter", false), ("t/limited", true), ("t/outer", true), ("t/plain", true)],
            compiled.Functions.Select(f => (f.Key.Split(':', '/')[1..3] is var n ? $"{n[0]}/{n[1]}" : "", f.Value)).Order());
        using var p = LoadedProgram.Load(compiled);
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.66", 80)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("10.3.0.1", 1003))); // the classifier's rule 3
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80))); // the limit's burst of 2
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 80)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.1", 80)));
        Assert.Equal(1UL, p.Counter(13).Packets);
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("nf")]
    public void QuotasSetUpdatesAndLogInAGlobalChainAsStaticAndInlined(string hook)
    {
        // jumped to from two rules: a quota, an element added from the packet and matched later, a log statement
        var h = hook switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };
        var seen = new Backend.Ir.Set("seen", Fields.Ip.Saddr, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true) { PacketWritten = true, Size = 16 };
        var chain = new Chain("t/stmts", ValueList.Of(
            new Rule(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(80))), ValueList.Of<Statement>(new QuotaStatement(150, false, 0), new CounterStatement(1)), Verdict.Accept),
            new Rule(ValueList.Of(Matcher.InSet(Fields.Ip.Saddr, "seen"), Matcher.Eq(Fields.Tcp.Dport, U16(81))), ValueList.Of<Statement>(new CounterStatement(2)), Verdict.Drop),
            new Rule(ValueList.Of(Matcher.Eq(Fields.Tcp.Dport, U16(82))), ValueList.Of<Statement>(new SetUpdateStatement(SetUpdateOp.Add, "seen", Fields.Ip.Saddr, TimeSpan.FromMinutes(5))), Verdict.Continue),
            new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new LogStatement("stmts: "), new CounterStatement(3)), Verdict.Continue)));
        var rs = Ruleset(h, Verdict.Accept, [
            new Rule(Verdict.Jump("t/stmts"), Matcher.Eq(Fields.Tcp.Sport, U16(1))),
            new Rule(Verdict.Jump("t/stmts"), Matcher.Eq(Fields.Tcp.Sport, U16(2))),
            Counted(4, Verdict.Drop, Matcher.Eq(Fields.Tcp.Dport, U16(82))),
        ], [chain], [seen]);
        var global = Compile(rs, inline: false, LoweringPipeline.None);
        // netfilter logs the packet's first bytes through the dynptr: that chain stays static
        Assert.Equal(hook != "nf", global.Functions.Values.Single());
        using var g = LoadedProgram.Load(global);
        using var st = LoadedProgram.Load(Compile(rs, inline: false, LoweringPipeline.None, staticSubprograms: true));
        using var inl = LoadedProgram.Load(Compile(rs, inline: true, LoweringPipeline.None));
        foreach (var (sport, src, dport) in new (ushort, string, ushort)[] { (1, "198.18.0.1", 80), (2, "198.18.0.1", 80), (1, "198.18.0.2", 81),
            (1, "198.18.0.2", 82), (2, "198.18.0.2", 81), (3, "198.18.0.2", 81), (1, "198.18.0.1", 80), (2, "198.18.0.3", 82), (1, "198.18.0.3", 81) })
        {
            var packet = PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(sport, dport, 0x02).Payload(20);
            var verdict = inl.Run(packet);
            Assert.True(verdict == g.Run(packet), $"global: sport {sport} {src}:{dport}");
            Assert.True(verdict == st.Run(packet), $"static: sport {sport} {src}:{dport}");
        }
        foreach (var id in inl.Compiled.CounterSlots.Keys)
        {
            Assert.Equal(inl.Counter(id), g.Counter(id));
            Assert.Equal(inl.Counter(id), st.Counter(id));
        }
        Assert.Equal(2UL, g.Counter(2).Packets); // 198.18.0.2 and .3 were added at port 82, then dropped at 81
    }

    [Fact]
    public void NestingDeeperThanTheCallFramesIsInlinedOuterChainsCalledInner()
    {
        // c0 → c1 → ... → c11 (12 nested jumps): the verifier allows 8 frames, so the outer chains are inlined
        // and the inner 7 are called; c11 drops 198.18.0.11, each ci accepts its own port
        var chains = Enumerable.Range(0, 12).Select(i => new Chain($"t/c{i}", ValueList.Of(
            Accept(Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(100 + i)))),
            i < 11 ? new Rule(Verdict.Jump($"t/c{i + 1}")) : Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.11")))))).ToArray();
        var rs = Ruleset(Xdp, Verdict.Drop, [new Rule(Verdict.Jump("t/c0")), Accept(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.1")))], chains);
        var compiled = Compile(rs, inline: false, LoweringPipeline.None);
        Assert.Equal(ProgramCompiler.MaxCallFrames - 1, Calls(compiled));
        using var p = LoadedProgram.Load(compiled);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9", 100)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.9", 111)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.11", 99)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 99)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.9", 99)));
    }

    [Fact]
    public void JumpsDeeperThanNfTablesAllowsAreStillRefused()
    {
        var chains = Enumerable.Range(0, 17).Select(i => new Chain($"t/c{i}", ValueList.Of(
            i < 16 ? new Rule(Verdict.Jump($"t/c{i + 1}")) : Drop()))).ToArray();
        var rs = Ruleset(Xdp, Verdict.Accept, [new Rule(Verdict.Jump("t/c0"))], chains);
        var ex = Assert.Throws<CodegenException>(() => Compile(rs, inline: false));
        Assert.Contains("deeper than 16", ex.Message);
    }

    [Fact]
    public void ARejectInsideASubchainIsAnsweredByTheBaseProgram()
    {
        var ipv4 = Matcher.Eq(Fields.Protocol, U16(0x0800));
        var sub = new Chain("t/sub", ValueList.Of(new Rule(new RejectVerdict(RejectType.TcpReset), ipv4, Matcher.Eq(Fields.Tcp.Dport, U16(22)))));
        var rs = Ruleset(Xdp, Verdict.Accept, [new Rule(Verdict.Jump("t/sub")), new Rule(Verdict.Jump("t/sub"))], [sub]);
        var compiled = Compile(rs, inline: false);
        Assert.Equal(2, Calls(compiled));
        using var p = LoadedProgram.Load(compiled);
        using var inlined = LoadedProgram.Load(Compile(rs, inline: true));
        byte[] syn = PacketBuilder.Ether().Ipv4("198.51.100.1", "198.51.100.2").Tcp(40000, 22, flags: 0x02, seq: 1000).Payload(10);
        var r = p.TestRun(syn);
        Assert.Equal(3U, r.ReturnValue); // XDP_TX: the reset goes back out
        Assert.Equal(inlined.TestRun(syn).DataOut, r.DataOut);
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.1", 23)));
    }

    [Fact]
    public void AcceptInASubchainGoesOnWithTheNextBaseChain()
    {
        var sub = new Chain("t/sub", ValueList.Of(Accept(Matcher.Eq(Fields.Tcp.Dport, U16(22)))));
        var first = new BaseChain("t/first", Xdp, -10, Verdict.Drop, ValueList.Of(new Rule(Verdict.Jump("t/sub"))));
        var second = new BaseChain("t/second", Xdp, 10, Verdict.Accept, ValueList.Of(Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.5")))));
        var rs = new Ruleset(ValueList.Of(first, second), ValueList.Of(sub), ValueList<Backend.Ir.Set>.Empty);
        using var p = LoadedProgram.Load(Compile(rs, inline: false));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.5", 22)));
        Assert.Equal(XdpPass, p.Run(Tcp4("198.18.0.6", 22)));
        Assert.Equal(XdpDrop, p.Run(Tcp4("198.18.0.6", 23)));
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("nf")]
    public void SetsLimitsAndVerdictMapsWorkInsideSubprograms(string hook)
    {
        var h = hook == "xdp" ? Xdp : NfIn4;
        var blocked = new Backend.Ir.Set("blocked", Fields.Ip.Saddr, SetData.NoData,
            ValueList.Of(SetElement.Exact(V4("198.18.0.66"))));
        var vmap = new Backend.Ir.Set("svc", Fields.Tcp.Dport, SetData.VerdictData,
            ValueList.Of(SetElement.Exact(U16(80), Verdict.Jump("t/web")), SetElement.Exact(U16(81), Verdict.Drop)));
        var limit = new LimitStatement(1, TimeSpan.FromMinutes(1), 2) { StateSlot = 0 };
        var web = new Chain("t/web", ValueList.Of(
            new Rule(ValueList.Of(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.7"))), ValueList.Of<Statement>(limit), Verdict.Accept),
            Drop(Matcher.Eq(Fields.Ip.Saddr, V4("198.18.0.7")))));
        var sub = new Chain("t/sub", ValueList.Of(
            Drop(Matcher.InSet(Fields.Ip.Saddr, "blocked")),
            new Rule(Verdict.VMap(Fields.Tcp.Dport, "svc"))));
        var rs = Ruleset(h, Verdict.Accept, [new Rule(Verdict.Jump("t/sub"))], [sub, web], [blocked, vmap]);
        var compiled = Compile(rs, inline: false);
        Assert.Equal(2, Calls(compiled)); // base → sub, sub → web (a verdict-map element)
        using var p = LoadedProgram.Load(compiled);
        uint accept = hook == "xdp" ? XdpPass : NfAccept, drop = hook == "xdp" ? XdpDrop : NfDrop;
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.66", 22)));
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.65", 22)));
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.65", 81)));
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.7", 80))); // the limit's burst of 2
        Assert.Equal(accept, p.Run(Tcp4("198.18.0.7", 80)));
        Assert.Equal(drop, p.Run(Tcp4("198.18.0.7", 80)));
    }

    [Theory]
    [InlineData("xdp")]
    [InlineData("tc")]
    [InlineData("nf")]
    public void ClassifiersAndLogStatementsRunInsideSubprograms(string hook)
    {
        // a regular chain of 20 five-tuple rules (one classifier after lowering) and a log statement, jumped to twice
        var h = hook switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };
        var acl = Enumerable.Range(0, 20).Select(i => Counted(10 + (ulong)i, i % 2 == 0 ? Verdict.Drop : Verdict.Accept,
            Matcher.Prefix(Fields.Ip.Saddr, Value.FromBytes(10, (byte)i, 0, 0), 16), Matcher.Eq(Fields.Tcp.Dport, U16((ulong)(1000 + i))))).ToList();
        acl.Add(new Rule(ValueList<Matcher>.Empty, ValueList.Of<Statement>(new LogStatement("sub: ")), Verdict.Continue));
        var rs = Ruleset(h, Verdict.Accept, [
            new Rule(Verdict.Jump("t/acl"), Matcher.Eq(Fields.Tcp.Sport, U16(1))),
            new Rule(Verdict.Jump("t/acl"), Matcher.Eq(Fields.Tcp.Sport, U16(2))),
            Drop(Matcher.Eq(Fields.Ip.Saddr, V4("10.3.0.1"))),
        ], [new Chain("t/acl", acl.ToValueList())]);
        var called = Compile(rs, inline: false);
        Assert.Equal(2, Calls(called));
        Assert.Contains(called.Maps, m => m.Name == "cls:rules"); // the chain's rules became a classifier
        using var p = LoadedProgram.Load(called);
        using var inlined = LoadedProgram.Load(Compile(rs, inline: true));
        foreach (var sport in new ushort[] { 1, 2, 3 })
            foreach (var (src, dport) in new[] { ("10.0.1.1", 1000), ("10.1.1.1", 1001), ("10.3.0.1", 1000), ("10.3.0.1", 1003), ("10.4.0.1", 1004) })
            {
                var packet = PacketBuilder.Ether().Ipv4(src, "198.18.0.2").Tcp(sport, (ushort)dport, 0x02);
                Assert.True(inlined.Run(packet) == p.Run(packet), $"sport {sport} {src}:{dport}");
            }
        foreach (var id in inlined.Compiled.CounterSlots.Keys)
            Assert.Equal(inlined.Counter(id), p.Counter(id));
        Assert.Equal(2UL, p.Counter(10).Packets); // 10.0.1.1:1000 from sport 1 and from sport 2, each dropped in its one jump
    }

    [Theory]
    [InlineData(1, "xdp")]
    [InlineData(2, "xdp")]
    [InlineData(3, "tc")]
    [InlineData(4, "nf")]
    [InlineData(5, "xdp")]
    [InlineData(6, "nf")]
    [InlineData(8, "nf")]
    [InlineData(10, "tc")]
    [InlineData(13, "xdp")]
    [InlineData(12, "nf")]
    public void RandomRulesetsGiveTheVerdictsAndCountersOfTheInlinedProgramGlobalOrStatic(int seed, string hook)
    {
        var random = new Random(seed);
        var h = hook switch { "xdp" => Xdp, "tc" => TcIn, _ => NfIn4 };
        string[] sources = ["198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"];
        ushort[] ports = [22, 80, 443, 8080];
        ulong counter = 0;
        Matcher[] Matchers()
        {
            var m = new List<Matcher>();
            if (random.Next(2) == 0) m.Add(Matcher.Eq(Fields.Ip.Saddr, V4(sources[random.Next(sources.Length)])));
            if (random.Next(2) == 0) m.Add(Matcher.Eq(Fields.Tcp.Dport, U16(ports[random.Next(ports.Length)])));
            return [.. m];
        }
        // chain i jumps only to chains after it: no loops; some chains are reached from several places
        const int chainCount = 8;
        Verdict RandomVerdict(int from)
        {
            var pick = random.Next(from < chainCount - 1 ? 7 : 4);
            return pick switch
            {
                0 => Verdict.Accept,
                1 => Verdict.Drop,
                2 => Verdict.Return,
                3 => Verdict.Continue,
                4 or 5 => Verdict.Jump($"t/c{random.Next(from + 1, chainCount)}"),
                _ => Verdict.Goto($"t/c{random.Next(from + 1, chainCount)}"),
            };
        }
        Rule RandomRule(int from) => new(Matchers().ToValueList(), RandomVerdict(from), ++counter);
        var chains = Enumerable.Range(0, chainCount)
            .Select(i => new Chain($"t/c{i}", Enumerable.Range(0, random.Next(1, 6)).Select(_ => RandomRule(i)).ToValueList())).ToArray();
        var baseRules = Enumerable.Range(0, 10).Select(_ => RandomRule(-1) is var r && r.Verdict is ReturnVerdict ? r with { Verdict = Verdict.Jump("t/c0") } : r).ToArray();
        var rs = Ruleset(h, random.Next(2) == 0 ? Verdict.Accept : Verdict.Drop, baseRules, chains);

        var calledProgram = Compile(rs, inline: false, LoweringPipeline.None);
        Assert.True(Calls(calledProgram) > 0);
        Assert.All(calledProgram.Functions.Values, Assert.True); // nothing here keeps verifier state in the frame
        using var called = LoadedProgram.Load(calledProgram);
        using var staticCalled = LoadedProgram.Load(Compile(rs, inline: false, LoweringPipeline.None, staticSubprograms: true));
        using var inlined = LoadedProgram.Load(Compile(rs, inline: true, LoweringPipeline.None));
        foreach (var s in sources.Append("198.18.0.9"))
            foreach (var port in ports.Append((ushort)9))
            {
                var verdict = inlined.Run(Tcp4(s, port));
                Assert.True(verdict == called.Run(Tcp4(s, port)), $"global: {s}:{port} in\n{rs}");
                Assert.True(verdict == staticCalled.Run(Tcp4(s, port)), $"static: {s}:{port} in\n{rs}");
            }
        Assert.Equal(inlined.Compiled.CounterSlots.Keys.Order(), called.Compiled.CounterSlots.Keys.Order());
        foreach (var id in inlined.Compiled.CounterSlots.Keys)
        {
            Assert.True(inlined.Counter(id) == called.Counter(id), $"global: counter {id} in\n{rs}");
            Assert.True(inlined.Counter(id) == staticCalled.Counter(id), $"static: counter {id} in\n{rs}");
        }
    }
}
