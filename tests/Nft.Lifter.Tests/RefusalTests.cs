using Nft.Netlink;
using Bpfilter.Backend.Ir;

namespace Nft.Lifter.Tests;

/// <summary>
/// Constructs bpfilter-nft cannot enforce faithfully, from Corpus/refused.nft (kernel dump): each is refused
/// with EOPNOTSUPP, the rule's location, the index of the expression nft should underline, and a reason.
/// </summary>
public class RefusalTests
{
    const string NotSupported = " is not supported by bpfilter-nft";

    [Theory]
    [InlineData("ct", 0, "expression 'ct helper'" + NotSupported + " (only ct state, direction, status, mark, zone, expiration, label, l3proto, protocol, and original|reply saddr, daddr, ip saddr, ip daddr, ip6 saddr, ip6 daddr, proto-src, proto-dst, zone)")]
    [InlineData("ct_after_match", 4, "expression 'ct helper'" + NotSupported + " (only ct state, direction, status, mark, zone, expiration, label, l3proto, protocol, and original|reply saddr, daddr, ip saddr, ip daddr, ip6 saddr, ip6 daddr, proto-src, proto-dst, zone)")]
    [InlineData("reject", 0, "expression 'reject'" + NotSupported + " in inet tables: BPF answers only at a device's ingress (netdev tables); at netfilter hooks the kernel routes its reply")]
    [InlineData("fib", 0, "expression 'fib'" + NotSupported)]
    [InlineData("exthdr", 0, "expression 'exthdr' (tcp option 2 @ offset 2, 2 byte(s))" + NotSupported + ": bpfilter-nft does not parse transport options")]
    [InlineData("notrack", 0, "expression 'notrack'" + NotSupported)]
    [InlineData("hash", 3, "expression 'hash'" + NotSupported)]
    [InlineData("nftrace", 1, "expression 'meta' setting meta nftrace" + NotSupported)]
    [InlineData("meta_skuid", 0, "expression 'meta skuid'" + NotSupported)]
    [InlineData("meta_random", 6, "expression 'meta random'" + NotSupported)]
    [InlineData("payload_set", 4, "expression 'payload' writing packet data (payload set)" + NotSupported)]
    [InlineData("counter_first", 0, "a counter before a match is not supported: bpfilter-nft counts a rule's packets after all its matches")]
    [InlineData("data_map", 3, "map lookups that load data into a register are not supported by bpfilter-nft (only sets and verdict maps)")]
    [InlineData("ether_in_inet", 0, "link-layer (ether, vlan) matches work only in netdev tables and inet ingress chains: bpfilter-nft runs netfilter-hook chains without the Ethernet header")]
    [InlineData("catchall", 3, "set '__map0' has a catch-all element (*), which bpfilter-nft does not support")]
    public void RefusesWithLocation(string comment, int index, string reason)
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, comment);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "in", rule));
        Assert.Equal(reason, e.Reason);
        Assert.Equal(index, e.ExpressionIndex);
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Equal(("r", "in", rule.Handle), (e.Table, e.Chain, e.RuleHandle));
        Assert.Equal($"table inet r chain in rule {rule.Handle}: {reason}", e.ExtAck);
        // the index points at a real expression of the rule: nft underlines that statement
        Assert.InRange(index, 0, rule.Expressions!.Count - 1);
    }

    /// <summary>The corpus table with only the rule named by <paramref name="comment"/>, lifted.</summary>
    static (Nft.Bytecode.Objects.SourceTable Table, LiftResult Lifted) LiftOnly(string comment)
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, comment);
        return (t, NftLifter.LiftTable(t with { Chains = t.Chains.Select(c => c with { Rules = c.Rules.Where(r => r == rule).ToList() }).ToList() }));
    }

    /// <summary>
    /// `update @dyn { ip saddr }` lifts into a packet-path set update; the set it writes gets nft_dynset's
    /// default size (65535) and is marked written.
    /// </summary>
    [Fact]
    public void DynsetLiftsIntoASetUpdate()
    {
        var (_, lifted) = LiftOnly("dynset");
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        Assert.True(set.PacketWritten);
        Assert.Equal(65535, set.Size);
        Assert.False(set.Timeouts);
        var update = Assert.IsType<Bpfilter.Backend.Ir.SetUpdateStatement>(Assert.Single(lifted.Ruleset.BaseChains.Items.SelectMany(c => c.Rules).Concat(lifted.Ruleset.Chains.Items.SelectMany(c => c.Rules)).SelectMany(r => r.Statements)));
        Assert.Equal(Bpfilter.Backend.Ir.SetUpdateOp.Update, update.Op);
        Assert.Equal(set.Name, update.Set);
        Assert.Equal(Bpfilter.Backend.Ir.Fields.Ip.Saddr, update.Key);
        Assert.Null(update.Timeout);
    }

    /// <summary>
    /// A set with `counter` lifts: each element counts in its own slot, named by the set and the element's key
    /// (so the daemon reads it back for the listing and keeps it across recompiles).
    /// </summary>
    [Fact]
    public void CounterSetLiftsWithACounterPerElement()
    {
        var t = OnlyRule("counter_set", out _);
        var slots = new CounterSlots();
        var lifted = NftLifter.LiftTable(t, slots);
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/cnt", StringComparison.Ordinal));
        var counter = Assert.IsType<Bpfilter.Backend.Ir.CounterStatement>(Assert.Single(Assert.Single(set.Elements.Items).Statements.Items));
        var element = Assert.Single(t.FindSet("cnt")!.Elements);
        Assert.Equal(counter.Id, lifted.Counters[CounterKey.Element(t.Family, t.Name, "cnt", element.Key, element.KeyEnd)]);
    }

    /// <summary>
    /// A set's quota and limit per element lift to statements of each element with a state slot named by set,
    /// key and position (so the element keeps its state through recompiles and restarts).
    /// </summary>
    [Theory]
    [InlineData("quota")]
    [InlineData("limit")]
    public void QuotasAndLimitsPerElementLiftWithASlotPerElement(string kind)
    {
        var t = WithElementStatement("counter_set", kind == "quota" ? new Nft.Bytecode.Expressions.QuotaExpr(1000, null, 40) : new Nft.Bytecode.Expressions.LimitExpr(1, 60), out _);
        var slots = new CounterSlots();
        var lifted = NftLifter.LiftTable(t, slots);
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/cnt", StringComparison.Ordinal));
        var statement = Assert.Single(Assert.Single(set.Elements.Items).Statements.Items);
        var element = Assert.Single(t.FindSet("cnt")!.Elements);
        var key = StatefulKey.Element(t.Family, t.Name, "cnt", element.Key, element.KeyEnd, 0);
        if (kind == "quota")
        {
            var q = Assert.IsType<Bpfilter.Backend.Ir.QuotaStatement>(statement);
            Assert.Equal((1000UL, false, 40UL), (q.Bytes, q.Over, q.Used));
            Assert.Equal(q.StateSlot, lifted.Quotas[key]);
        }
        else
        {
            var l = Assert.IsType<Bpfilter.Backend.Ir.LimitStatement>(statement);
            Assert.Equal((1UL, TimeSpan.FromMinutes(1), 5u), (l.Rate, l.Per, l.Burst));
            Assert.Equal(l.StateSlot, lifted.Limits[key]);
        }
    }

    /// <summary>`ct count` (connlimit) and `last` per element stay in the kernel: the rule reading the set is refused with why.</summary>
    [Fact]
    public void ConnlimitAndLastPerElementAreRefusedWithTheirReason()
    {
        var t = WithElementStatement("counter_set", new Nft.Bytecode.Expressions.ConnlimitExpr(2), out var rule);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "in", rule));
        Assert.Equal("set 'cnt' has per-element `ct count` (connlimit: nf_conncount's per-element connection lists live only in the kernel)", e.Reason);
        Assert.Equal(3, e.ExpressionIndex);
        t = WithElementStatement("counter_set", new Nft.Bytecode.Expressions.LastExpr(), out rule);
        e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, "in", rule));
        Assert.Equal("set 'cnt' has per-element `last`, which bpfilter-nft runs only in the kernel", e.Reason);
    }

    /// <summary>
    /// `update @dyn { ip saddr counter quota 1000 bytes }` gives the set it writes these statements for the elements
    /// the packet path adds (no state slots: the state sits in each element's value); a `limit` or `ct count` there
    /// stays in the kernel with its reason.
    /// </summary>
    [Fact]
    public void DynsetStatementsAndLimitsLiftIntoTheSetsPacketStatementsAndConnlimitIsRefused()
    {
        var t = WithDynsetStatements([new Nft.Bytecode.Expressions.CounterExpr(), new Nft.Bytecode.Expressions.QuotaExpr(1000, 0)], out var rule);
        var lifted = NftLifter.LiftTable(t);
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        Assert.Equal(new Bpfilter.Backend.Ir.Statement[] { new Bpfilter.Backend.Ir.CounterStatement(0), new Bpfilter.Backend.Ir.QuotaStatement(1000, false, 0) },
            set.PacketStatements.Items.ToArray());
        // a limit lifts without a state slot (its buckets are the set's bucket map's), burst 0 of packets as nft_limit's default 5
        t = WithDynsetStatements([new Nft.Bytecode.Expressions.LimitExpr(10, 1, Flags: Nft.Bytecode.Expressions.LimitExpr.NFT_LIMIT_F_INV)], out rule);
        set = Assert.Single(NftLifter.LiftTable(t).Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        Assert.Equal(new Bpfilter.Backend.Ir.LimitStatement(10, TimeSpan.FromSeconds(1), 5, Over: true), Assert.Single(set.PacketStatements.Items));
        t = WithDynsetStatements([new Nft.Bytecode.Expressions.ConnlimitExpr(2)], out rule);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, rule.Chain!, rule));
        Assert.Contains("`ct count` on elements set 'dyn'", e.Reason);
    }

    /// <summary>
    /// Rules giving one set different statement lists (the measurement's `update @s { ip daddr limit rate 1/hour burst 2
    /// packets }` then `update @s { ip daddr counter quota 100000 bytes }`) lift: each rule's update carries its own
    /// list (nft_dynset_new clones the making rule's into the element), the set every list in rule order, the first as
    /// its PacketStatements; a rule giving none and a delete carry none. More lists than the backend's tags are refused
    /// with the rule named.
    /// </summary>
    [Fact]
    public void RulesGivingOneSetDifferentStatementListsEachCarryTheirOwn()
    {
        var limit = new Nft.Bytecode.Expressions.LimitExpr(1, 3600, Burst: 2);
        var counter = new Nft.Bytecode.Expressions.CounterExpr();
        var quota = new Nft.Bytecode.Expressions.QuotaExpr(100000, 0);
        var t = WithDynsetRules([[limit], [counter, quota], [], [], [limit]], deleteLast: true, out var rules);
        var lifted = NftLifter.LiftTable(t);
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        // each list as the rule alone gives it
        var limited = Alone([limit]);
        var quoted = Alone([counter, quota]);
        Assert.Equal(2, quoted.Count);
        Assert.Equal(limited, set.PacketStatements);
        Assert.Equal(ValueList.Of(limited, quoted), set.RuleStatementLists);
        Assert.Equal([limited, quoted], set.ElementLists);
        var updates = AllStatements(lifted).OfType<SetUpdateStatement>().ToList();
        Assert.Equal(5, updates.Count);
        Assert.Equal(new ValueList<Statement>?[] { limited, quoted, ValueList<Statement>.Empty, ValueList<Statement>.Empty, limited },
            updates.Select(u => u.Stateful).ToArray());
        Assert.Equal(SetUpdateOp.Delete, updates[3].Op);
        Assert.Equal([0, 1, -1, -1, 0], updates.Select(u => set.TagOf(u.Stateful!.Value)).ToArray());

        // one list more than the tags: the rule that gives it is named
        var many = Enumerable.Range(1, Set.MaxElementLists + 1).Select(n => (List<Nft.Bytecode.Expressions.Expression>)[new Nft.Bytecode.Expressions.QuotaExpr((ulong)n, 0)]).ToList();
        t = WithDynsetRules(many, deleteLast: false, out rules);
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t));
        Assert.Equal(rules[^1].Handle, e.RuleHandle);
        Assert.Contains($"more than the {Set.MaxElementLists} statement lists", e.Reason);
    }

    /// <summary>
    /// Two base chains writing one set, each rule giving its own list: the lifted ruleset's one set holds both lists (the
    /// first chain's first), and each chain's update carries its own, so both programs compile the set alike.
    /// </summary>
    [Fact]
    public void BaseChainsWritingOneSetWithDifferentListsShareOneSetWithBoth()
    {
        var counter = new Nft.Bytecode.Expressions.CounterExpr();
        var quota = new Nft.Bytecode.Expressions.QuotaExpr(100000, 0);
        var t = WithDynsetRules([[counter]], deleteLast: false, out var rules);
        var chain = t.Chains.Single(c => c.Rules.Contains(rules[0]));
        Assert.True(chain.IsBase);
        var other = WithDynsetRules([[counter, quota]], deleteLast: false, out var others).Chains.Single(c => c.Rules.Contains(others[0]));
        t = t with { Chains = [.. t.Chains, new Nft.Bytecode.Objects.SourceChain(other.Chain with { Name = chain.Name + "2" }, others)] };
        var lifted = NftLifter.LiftTable(t);
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        var counted = Alone([counter]);
        var quoted = Alone([counter, quota]);
        Assert.Equal(ValueList.Of(counted, quoted), set.RuleStatementLists);
        Assert.Equal(counted, set.PacketStatements);
        var updates = lifted.Ruleset.BaseChains.Items.Select(c => c.Rules.SelectMany(r => r.Statements).OfType<SetUpdateStatement>().Single()).ToList();
        Assert.Equal(2, updates.Count);
        Assert.Equal(new ValueList<Statement>?[] { counted, quoted }, updates.Select(u => u.Stateful).ToArray());
    }

    /// <summary>The statements the "dynset" rule alone, giving <paramref name="statements"/>, gives its set's elements.</summary>
    static ValueList<Statement> Alone(List<Nft.Bytecode.Expressions.Expression> statements) =>
        Assert.Single(NftLifter.LiftTable(WithDynsetStatements(statements, out _)).Ruleset.Sets.Items,
            s => s.Name.EndsWith("/dyn", StringComparison.Ordinal)).PacketStatements;

    /// <summary>
    /// The "dynset" rule once per entry of <paramref name="lists"/> (its dynset giving that list), each with a handle of
    /// its own, then (<paramref name="deleteLast"/>) a `delete @dyn` before the last of them.
    /// </summary>
    static Nft.Bytecode.Objects.SourceTable WithDynsetRules(List<List<Nft.Bytecode.Expressions.Expression>> lists, bool deleteLast,
        out List<Nft.Bytecode.Objects.Rule> rules)
    {
        var t = OnlyRule("dynset", out var only);
        var made = new List<Nft.Bytecode.Objects.Rule>();
        for (var n = 0; n < lists.Count; n++)
        {
            var statements = lists[n];
            var delete = deleteLast && n == lists.Count - 2;
            made.Add(only with
            {
                Handle = 1000 + (ulong)n,
                Expressions = only.Expressions!.Select(x => x is Nft.Bytecode.Expressions.DynsetExpr d
                    ? d with
                    {
                        Op = delete ? Nft.Bytecode.Expressions.DynsetExpr.OpDelete : d.Op,
                        Expr = delete || statements.Count != 1 ? null : statements[0],
                        Expressions = delete || statements.Count < 2 ? null : statements,
                    } : x).ToList(),
            });
        }
        rules = made;
        return t with { Chains = t.Chains.Select(c => c.Rules.Contains(only) ? c with { Rules = made } : c).ToList() };
    }

    /// <summary>
    /// `update @dyn { ip saddr : DATA }` on a map of values: a constant or a whole packet field lifts as the data of
    /// the update (the register's bytes), the map's elements carry their data; host-order data (`meta mark`) stays
    /// in the kernel with its reason. Element data of the wrong length is refused.
    /// </summary>
    [Fact]
    public void DynsetOnAMapLiftsItsDataAsTheRegistersBytes()
    {
        var daddr = new Nft.Bytecode.Expressions.PayloadExpr(1, 16, 4, 2); // ip daddr => reg 2
        var lifted = NftLifter.LiftTable(WithMapData(daddr, [10, 0, 0, 9], out _));
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/dyn", StringComparison.Ordinal));
        Assert.Equal(new Bpfilter.Backend.Ir.SetData.Bytes(32), set.Data);
        Assert.Equal(Bpfilter.Backend.Ir.Value.FromBytes(10, 0, 0, 9), Assert.Single(set.Elements.Items).Data);
        var update = Assert.IsType<Bpfilter.Backend.Ir.SetUpdateStatement>(Assert.Single(AllStatements(lifted)));
        Assert.Equal(new Bpfilter.Backend.Ir.StatementValue.FromKey(Bpfilter.Backend.Ir.Fields.Ip.Daddr), update.Data);

        var mark = new Nft.Bytecode.Expressions.ImmediateExpr(2, new Nft.Bytecode.Data.ValueData([1, 0, 0, 0]));
        update = Assert.IsType<Bpfilter.Backend.Ir.SetUpdateStatement>(Assert.Single(AllStatements(NftLifter.LiftTable(WithMapData(mark, [1, 0, 0, 0], out _)))));
        Assert.Equal(new Bpfilter.Backend.Ir.StatementValue.Immediate(Bpfilter.Backend.Ir.Value.FromBytes(1, 0, 0, 0)), update.Data);

        var t = WithMapData(new Nft.Bytecode.Expressions.MetaExpr(3, 2), [1, 0, 0, 0], out var rule); // meta mark => reg 2
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftRule(t, rule.Chain!, rule));
        Assert.Equal("dynset on map 'dyn' with data other than a constant or a whole packet field is not supported by bpfilter-nft", e.Reason);

        e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(WithMapData(daddr, [10, 0, 0], out _)));
        Assert.Equal("set 'dyn' has an element whose data does not have the map's length", e.Reason);
    }

    static IEnumerable<Bpfilter.Backend.Ir.Statement> AllStatements(LiftResult lifted) =>
        lifted.Ruleset.BaseChains.Items.SelectMany(c => c.Rules).Concat(lifted.Ruleset.Chains.Items.SelectMany(c => c.Rules)).SelectMany(r => r.Statements);

    /// <summary>The "dynset" rule with set dyn made an ipv4_addr map holding 10.0.0.1 : <paramref name="data"/>, the data loaded by <paramref name="load"/> into reg 2.</summary>
    static Nft.Bytecode.Objects.SourceTable WithMapData(Nft.Bytecode.Expressions.Expression load, byte[] data, out Nft.Bytecode.Objects.Rule rule)
    {
        var t = OnlyRule("dynset", out var only);
        var exprs = new List<Nft.Bytecode.Expressions.Expression>();
        foreach (var x in only.Expressions!)
        {
            if (x is Nft.Bytecode.Expressions.DynsetExpr d) exprs.AddRange([load, d with { SRegData = 2 }]);
            else exprs.Add(x);
        }
        rule = only with { Expressions = exprs };
        var changed = rule;
        return t with
        {
            Chains = t.Chains.Select(c => c with { Rules = c.Rules.Select(r => r == only ? changed : r).ToList() }).ToList(),
            Sets = t.Sets.Select(s => s.Name != "dyn" ? s : s with
            {
                Set = s.Set with { Flags = (s.Set.Flags ?? 0) | (uint)Nft.Bytecode.NftSetFlags.Map, DataType = 7, DataLen = 4 },
                Elements = [new Nft.Bytecode.Objects.SetElement { Key = new Nft.Bytecode.Data.ValueData([10, 0, 0, 1]), Data = new Nft.Bytecode.Data.ValueData(data) }],
            }).ToList(),
        };
    }

    static Nft.Bytecode.Objects.SourceTable WithDynsetStatements(List<Nft.Bytecode.Expressions.Expression> statements, out Nft.Bytecode.Objects.Rule rule)
    {
        var t = OnlyRule("dynset", out var only);
        rule = only with { Expressions = only.Expressions!.Select(x => x is Nft.Bytecode.Expressions.DynsetExpr d
            ? d with { Expr = statements.Count == 1 ? statements[0] : null, Expressions = statements.Count > 1 ? statements : null } : x).ToList() };
        var changed = rule;
        return t with { Chains = t.Chains.Select(c => c with { Rules = c.Rules.Select(r => r == only ? changed : r).ToList() }).ToList() };
    }

    static Nft.Bytecode.Objects.SourceTable WithElementStatement(string comment, Nft.Bytecode.Expressions.Expression stmt, out Nft.Bytecode.Objects.Rule rule)
    {
        var t = OnlyRule(comment, out rule);
        return t with { Sets = t.Sets.Select(s => s.Name != "cnt" ? s : s with
        {
            Set = s.Set with { Expr = stmt },
            Elements = s.Elements.Select(e => e with { Expr = stmt }).ToList(),
        }).ToList() };
    }

    static Nft.Bytecode.Objects.SourceTable OnlyRule(string comment, out Nft.Bytecode.Objects.Rule rule)
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var only = CorpusLoader.RuleByComment(t, comment);
        rule = only;
        return t with { Chains = t.Chains.Select(c => c with { Rules = c.Rules.Where(r => r == only).ToList() }).ToList() };
    }

    /// <summary>
    /// A set with timeouts lifts: its elements carry their deadline in jiffies (the source's expiration is
    /// a deadline on the engine's clock, the kernel's jiffies in milliseconds).
    /// </summary>
    [Fact]
    public void TimeoutSetLiftsWithElementDeadlinesInJiffies()
    {
        var (t, lifted) = LiftOnly("timeout_set");
        var set = Assert.Single(lifted.Ruleset.Sets.Items, s => s.Name.EndsWith("/tmo", StringComparison.Ordinal));
        Assert.True(set.Timeouts);
        var e = Assert.Single(set.Elements.Items);
        var deadline = Assert.Single(t.FindSet("tmo")!.Elements).Expiration!.Value;
        Assert.Equal(deadline / (ulong)Bpfilter.Backend.Libbpf.KernelClock.TickMs!.Value, e.Expires);
    }

    [Fact]
    public void QuotaLiftsAsAStatementWithAStateSlotOfItsOwn()
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, "quota");
        var slots = new CounterSlots();
        var lifted = NftLifter.LiftRule(t, "in", rule, slots).Rule;
        var quota = Assert.IsType<Bpfilter.Backend.Ir.QuotaStatement>(Assert.Single(lifted.Statements));
        Assert.Equal(new Bpfilter.Backend.Ir.QuotaStatement(10485760, Over: true, StateSlot: 0), quota);
        Assert.True(slots.Quotas.TryGet(new StatefulKey(t.Family, "r", "in", rule.Handle!.Value, 0, null), out var slot));
        Assert.Equal(0UL, slot);
        Assert.Equal(Bpfilter.Backend.Ir.Verdict.Drop, lifted.Verdict);
    }

    [Fact]
    public void NamedCounterLiftsAsACounterStatementInTheObjectsSharedSlot()
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, "objref");
        var slots = new CounterSlots();
        slots.GetOrAdd(new CounterKey(t.Family, "r", "in", 999)); // a rule counter holds slot 0
        var lifted = NftLifter.LiftRule(t, "in", rule, slots).Rule;
        Assert.Equal(new Bpfilter.Backend.Ir.CounterStatement(1), Assert.Single(lifted.Statements));
        Assert.True(slots.TryGet(CounterKey.Named(t.Family, "r", "c1"), out var slot));
        Assert.Equal(1UL, slot);
        // a second rule naming it shares the slot
        Assert.Equal(new Bpfilter.Backend.Ir.CounterStatement(1), Assert.Single(NftLifter.LiftRule(t, "in", rule, slots).Rule.Statements));
    }

    [Fact]
    public void LimitLiftsAsAStatementWithTheKernelsDefaultBurst()
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, "limit");
        var slots = new CounterSlots();
        var lifted = NftLifter.LiftRule(t, "in", rule, slots).Rule;
        var limit = Assert.IsType<Bpfilter.Backend.Ir.LimitStatement>(Assert.Single(lifted.Statements));
        Assert.Equal(new Bpfilter.Backend.Ir.LimitStatement(10, TimeSpan.FromSeconds(1), 5) { StateSlot = 0 }, limit);
        Assert.True(slots.Limits.TryGet(new StatefulKey(t.Family, "r", "in", rule.Handle!.Value, 0, null), out _));
    }

    [Theory]
    [InlineData(0UL, 1UL, 5U, 0U, 0U, "rate 0 per 1 s burst 5 is out of nft_limit's range")]
    [InlineData(1UL, 18446744074UL, 5U, 0U, 0U, "rate 1 per 18446744074 s burst 5 is out of nft_limit's range")]
    [InlineData(1UL, 1UL, 5U, 2U, 0U, "of type 2 is not supported by bpfilter-nft")]
    [InlineData(1UL, 1UL, 5U, 0U, 2U, "with flags 0x2 is not supported by bpfilter-nft")]
    public void LimitsTheKernelRefusesAreRefused(ulong rate, ulong unit, uint burst, uint type, uint flags, string reason)
    {
        var l = new Nft.Bytecode.Expressions.LimitExpr(rate, unit, burst, type, flags);
        var e = Assert.Throws<InvalidOperationException>(() => LimitStatements.Lift(l, 0, why => new InvalidOperationException(why)));
        Assert.Equal("expression 'limit' " + reason, e.Message);
    }

    [Fact]
    public void LogToTheKernelLogLiftsAsAStatement()
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var rule = CorpusLoader.RuleByComment(t, "log");
        var lifted = NftLifter.LiftRule(t, "in", rule).Rule;
        var log = Assert.IsType<Bpfilter.Backend.Ir.LogStatement>(Assert.Single(lifted.Statements));
        Assert.Equal(new Bpfilter.Backend.Ir.LogStatement("x "), log);
    }

    [Theory]
    [InlineData(5, null, null, "expression 'log' to an nflog group (log group)" + NotSupported)]
    [InlineData(null, 8u, null, "expression 'log' with level audit" + NotSupported)]
    [InlineData(null, null, 0x40u, "expression 'log' with flags 0x40" + NotSupported)]
    public void LogThatBpfCannotWriteIsRefused(int? group, uint? level, uint? flags, string reason)
    {
        var l = new Nft.Bytecode.Expressions.LogExpr(Group: (ushort?)group, Prefix: "p", Level: level, Flags: flags);
        var e = Assert.Throws<InvalidOperationException>(() => LogStatements.Lift(l, why => new InvalidOperationException(why)));
        Assert.Equal(reason, e.Message);
    }

    [Fact]
    public void WholeTableIsRefusedAtItsFirstUnsupportedRule()
    {
        var t = CorpusLoader.Table("refused", "inet", "r");
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t));
        Assert.Equal(CorpusLoader.RuleByComment(t, "ct").Handle, e.RuleHandle);
    }

    [Theory]
    [InlineData("nat", "ip", "nat", "post", "chain type nat is not supported by bpfilter-nft (only filter)")]
    [InlineData("route", "ip", "mangle", "out", "chain type route is not supported by bpfilter-nft (only filter)")]
    [InlineData("bridge", "bridge", "br", "in", "bridge family base chains are not supported by bpfilter-nft")]
    [InlineData("arp", "arp", "a", "in", "arp family base chains are not supported by bpfilter-nft")]
    public void RefusesChainsThatCannotBeOffloaded(string corpus, string family, string table, string chain, string reason)
    {
        var e = Assert.Throws<LiftException>(() => NftLifter.Lift(CorpusLoader.Load(corpus)));
        Assert.Equal((family, table, chain, (ulong?)null, -1), (FamilyNames.Of(e.Family), e.Table, e.Chain, e.RuleHandle, e.ExpressionIndex));
        Assert.Equal(reason, e.Reason);
        Assert.Equal($"table {family} {table} chain {chain}: {reason}", e.ExtAck);
    }

    [Fact]
    public void RefusesFlowtables()
    {
        // the test kernel has no flowtable support, so the flowtable record is built here
        var t = CorpusLoader.Table("hooks", "ip", "t4");
        var ft = new Nft.Bytecode.Objects.Flowtable { Family = t.Family, Table = t.Name, Name = "f" };
        var e = Assert.Throws<LiftException>(() => NftLifter.LiftTable(t with { Flowtables = [ft] }));
        Assert.Equal("flowtable 'f' is not supported by bpfilter-nft", e.Reason);
        Assert.Null(e.Chain);
    }
}
