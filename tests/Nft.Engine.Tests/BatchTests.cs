using Nft.Engine.Model;
using Nft.Engine;
using Nft.Netlink;
using static Nft.Engine.Tests.NlTestKit;

namespace Nft.Engine.Tests;

/// <summary>Batch semantics of nfnetlink/nf_tables: all or nothing, every error reported, generation, handles.</summary>
public class BatchTests
{
    [Fact]
    public void GetGenOnAFreshNamespaceReportsGenerationOne()
    {
        var ep = NewEndpoint();
        var replies = Messages(ep.Process(Msg(NftMsg16.GetGen, NlmFlags.Request, 5, 0), Port));
        var (h, bytes) = Assert.Single(replies);
        Assert.Equal(Nfnl.Type(Nfnl.SubsysNftables, 15), h.Type);
        Assert.Equal(5u, h.Seq);
        Assert.Equal(Port, h.Pid);
        var a = Attrs(bytes);
        Assert.Equal(1u, Be32(a[1]));
        Assert.Equal(Port, Be32(a[2]));
        Assert.Equal("nft", Str(a[3]));
        Assert.Equal(1, bytes[19]); // res_id low byte = generation
    }

    [Fact]
    public void SuccessfulBatchIsSilentAndBumpsGenerationOnce()
    {
        var ep = NewEndpoint();
        var replies = ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"), AddRule(4, "t", "c", w => Counter(w))), Port);
        Assert.Empty(replies);
        Assert.Equal(2u, ep.Generation);
        var t = Assert.Single(ep.Ruleset.Tables);
        Assert.Equal(1ul, t.Handle);
        var c = Assert.Single(t.Chains);
        Assert.Equal(1ul, c.Handle);
        Assert.Equal(2ul, Assert.Single(c.Rules).Handle);
    }

    /// <summary>nf_tables_updchain renames at commit: in its batch the chain answers to its old name only.</summary>
    [Fact]
    public void RenamedChainKeepsItsOldNameUntilCommit()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port));
        byte[] Rename(uint seq, string to) => Msg(3, NlmFlags.Request, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutU64Be(2, 1);
            w.PutString(3, to);
        });
        var toNew = AddRule(5, "t", "d", w => Verdict(w, 1));
        var replies = Messages(ep.Process(Batch(Rename(4, "d"), toNew), Port));
        Assert.Equal((Errno.ENOENT, AttrOffset(toNew, 2)), Error(Assert.Single(replies).Bytes));
        Assert.Equal("c", Assert.Single(Assert.Single(ep.Ruleset.Tables).Chains).Name);

        Assert.Empty(ep.Process(Batch(Rename(6, "d"), AddRule(7, "t", "c", w => Verdict(w, 1))), Port));
        var c = Assert.Single(Assert.Single(ep.Ruleset.Tables).Chains);
        Assert.Equal("d", c.Name);
        Assert.Single(c.Rules);
    }

    [Fact]
    public void BatchWithoutChangesKeepsTheGeneration()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t")), Port);
        Assert.Empty(ep.Process(Batch(AddTable(2, "t")), Port)); // existing table, same flags: no transaction
        Assert.Equal(2u, ep.Generation);
    }

    [Fact]
    public void AnyErrorAbortsTheWholeBatchAndEveryErrorIsReportedInOrder()
    {
        var ep = NewEndpoint();
        var bad1 = AddRule(3, "t", "nochain", w => Counter(w));
        var bad2 = AddRule(5, "nosuchtable", "c", w => Counter(w));
        var replies = Messages(ep.Process(Batch(AddTable(2, "t"), bad1, AddChain(4, "t", "c"), bad2), Port));
        Assert.Equal(2, replies.Count);
        Assert.Equal(3u, replies[0].H.Seq);
        Assert.Equal((Errno.ENOENT, AttrOffset(bad1, 2)), Error(replies[0].Bytes));
        Assert.Equal(5u, replies[1].H.Seq);
        Assert.Equal((Errno.ENOENT, AttrOffset(bad2, 1)), Error(replies[1].Bytes));
        Assert.Empty(ep.Ruleset.Tables);
        Assert.Equal(1u, ep.Generation);
        // the error carries the whole offending message after struct nlmsgerr
        Assert.Equal(bad1, replies[0].Bytes.AsSpan(20, bad1.Length).ToArray());
    }

    [Fact]
    public void HandlesTakenByAnAbortedBatchStayUsed()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "a")), Port);
        Assert.Single(ep.Process(Batch(AddTable(2, "b"), AddChain(3, "a", "x"), AddRule(4, "a", "nochain", w => Counter(w))), Port));
        ep.Process(Batch(AddTable(2, "c"), AddChain(3, "a", "y")), Port);
        var t = ep.Ruleset.Tables;
        Assert.Equal(new ulong[] { 1, 3 }, t.Select(x => x.Handle));
        Assert.Equal(2ul, Assert.Single(t[0].Chains).Handle);
    }

    [Fact]
    public void AckFlagAddsAZeroErrnoAckPerMessage()
    {
        var ep = NewEndpoint();
        var replies = Messages(ep.Process(Batch(AddTable(2, "t", extra: NlmFlags.Ack), AddChain(3, "t", "c")), Port));
        var (h, bytes) = Assert.Single(replies);
        Assert.Equal(2u, h.Seq);
        Assert.Equal((0, -1), Error(bytes));
        Assert.Single(ep.Ruleset.Tables);
    }

    [Fact]
    public void StaleGenerationInBatchBeginIsRestart()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t")), Port);
        var replies = Messages(ep.Process(BatchOf([AddTable(2, "u")], end: true, genId: 1), Port));
        Assert.Equal(Errno.ERESTART, Error(Assert.Single(replies).Bytes).Errno);
        Assert.Single(ep.Ruleset.Tables);
        Assert.Empty(ep.Process(BatchOf([AddTable(2, "u")], end: true, genId: 2), Port));
        Assert.Equal(2, ep.Ruleset.Tables.Count);
    }

    [Fact]
    public void CheckModeWithoutBatchEndAppliesNothingButReportsErrors()
    {
        var ep = NewEndpoint();
        Assert.Empty(ep.Process(BatchOf([AddTable(2, "t")], end: false), Port));
        Assert.Empty(ep.Ruleset.Tables);
        var bad = AddChain(3, "t", "c");
        var replies = Messages(ep.Process(BatchOf([bad], end: false), Port));
        Assert.Equal((Errno.ENOENT, AttrOffset(bad, 1)), Error(Assert.Single(replies).Bytes));
        Assert.Equal(1u, ep.Generation);
    }

    [Fact]
    public void CreateOnExistingTableIsEexistBlamingTheName()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t")), Port);
        var create = AddTable(2, "t", extra: NlmFlags.Excl);
        var (_, bytes) = Assert.Single(Messages(ep.Process(Batch(create), Port)));
        Assert.Equal((Errno.EEXIST, AttrOffset(create, 1)), Error(bytes));
    }

    [Fact]
    public void RulePlacementFollowsPositionAndAppend()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c"),
            AddRule(4, "t", "c", w => Verdict(w, 1)),   // handle 2
            AddRule(5, "t", "c", w => Verdict(w, 0))),  // handle 3
            Port);
        ep.Process(Batch(
            AddRule(2, "t", "c", w => Counter(w), flags: Create, position: 3),                    // before 3: handle 4
            AddRule(3, "t", "c", w => Counter(w), flags: Create | NlmFlags.Append, position: 2),  // after 2: handle 5
            AddRule(4, "t", "c", w => Counter(w), flags: Create)),                                // head: handle 6
            Port);
        Assert.Equal(new ulong[] { 6, 2, 5, 4, 3 }, ep.Ruleset.Tables[0].Chains[0].Rules.Select(r => r.Handle));
        // replace in place keeps the handle's slot, with the new expressions
        Assert.Empty(ep.Process(Batch(AddRule(2, "t", "c", w => Verdict(w, -5), flags: NlmFlags.Request | NlmFlags.Replace, handle: 5)), Port));
        var rules = ep.Ruleset.Tables[0].Chains[0].Rules;
        Assert.Equal(new ulong[] { 6, 2, 5, 4, 3 }, rules.Select(r => r.Handle));
        Assert.Equal(-5, Assert.IsType<Nft.Bytecode.Expressions.ImmediateExpr>(rules[2].Expressions[0]).Verdict?.Code);
        // a handle without REPLACE is EOPNOTSUPP, with EXCL EEXIST on the handle
        var excl = AddRule(2, "t", "c", w => Counter(w), flags: Create | NlmFlags.Excl, handle: 5);
        Assert.Equal((Errno.EEXIST, AttrOffset(excl, 3)), Error(Assert.Single(Messages(ep.Process(Batch(excl), Port))).Bytes));
        var noReplace = AddRule(2, "t", "c", w => Counter(w), flags: Create, handle: 5);
        Assert.Equal(Errno.EOPNOTSUPP, Error(Assert.Single(Messages(ep.Process(Batch(noReplace), Port))).Bytes).Errno);
    }

    [Fact]
    public void DeletingAChainStillJumpedToIsBusy()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "a"), AddChain(4, "t", "b"),
            AddRule(5, "t", "a", w => Verdict(w, -3, "b"))), Port);
        var del = Msg(5, Create, 2, Ip, w => { w.PutString(1, "t"); w.PutString(3, "b"); });
        Assert.Equal((Errno.EBUSY, AttrOffset(del, 3)), Error(Assert.Single(Messages(ep.Process(Batch(del), Port))).Bytes));
        // deleting the jumping chain first (rules go with it) frees b in the same batch
        var delA = Msg(5, Create, 2, Ip, w => { w.PutString(1, "t"); w.PutString(3, "a"); });
        Assert.Empty(ep.Process(Batch(delA, del), Port));
        Assert.Empty(ep.Ruleset.Tables[0].Chains);
    }

    [Fact]
    public void JumpToMissingOrBaseChainBlamesTheExpression()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "base", hook: (1, 0)), AddChain(4, "t", "r")), Port);
        var missing = AddRule(2, "t", "r", w => Verdict(w, -3, "nosuch"));
        var toBase = AddRule(3, "t", "r", w => Verdict(w, -3, "base"));
        var replies = Messages(ep.Process(Batch(missing, toBase), Port));
        int exprOffset = AttrOffset(missing, 4) + 4; // the NFTA_LIST_ELEM inside NFTA_RULE_EXPRESSIONS
        Assert.Equal((Errno.ENOENT, exprOffset), Error(replies[0].Bytes));
        Assert.Equal((Errno.EOPNOTSUPP, AttrOffset(toBase, 4) + 4), Error(replies[1].Bytes));
    }

    [Fact]
    public void JumpsDeeperThanTheStackFromABaseChainAreEmlinkOnTheRule()
    {
        var ep = NewEndpoint();
        var msgs = new List<byte[]> { AddTable(2, "t"), AddChain(3, "t", "base", hook: (1, 0)) };
        for (int i = 0; i < 20; i++) msgs.Add(AddChain((uint)(10 + i), "t", $"c{i}"));
        for (int i = 0; i < 19; i++) msgs.Add(AddRule((uint)(40 + i), "t", $"c{i}", w => Verdict(w, -3, $"c{i + 1}")));
        Assert.Empty(ep.Process(Batch(msgs.ToArray()), Port));
        var jump = AddRule(100, "t", "base", w => Verdict(w, -3, "c0"));
        var replies = Messages(ep.Process(Batch(jump), Port));
        var (h, bytes) = Assert.Single(replies);
        Assert.Equal(100u, h.Seq);
        Assert.Equal((Errno.EMLINK, -1), Error(bytes));
        Assert.Empty(ep.Ruleset.Tables[0].Chains[0].Rules);
    }

    [Fact]
    public void MoreThan128ExpressionsIsEinval()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        var big = AddRule(2, "t", "c", w => { for (int i = 0; i < 129; i++) Counter(w); });
        Assert.Equal(Errno.EINVAL, Error(Assert.Single(Messages(ep.Process(Batch(big), Port))).Bytes).Errno);
        var ok = AddRule(2, "t", "c", w => { for (int i = 0; i < 128; i++) Counter(w); });
        Assert.Empty(ep.Process(Batch(ok), Port));
    }

    [Fact]
    public void FlowtablesAreRefusedWithAMessage()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t")), Port);
        var ft = Msg(22, Create, 2, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "f");
            var h = w.BeginNested(3);
            w.PutU32Be(1, 0);
            w.EndNested(h);
        });
        var reply = Assert.Single(ep.Process(Batch(ft), Port));
        Assert.Equal(Errno.EOPNOTSUPP, Error(reply).Errno);
        Assert.Contains("flowtables are not supported", System.Text.Encoding.ASCII.GetString(reply));
    }

    [Fact]
    public void EchoReturnsTheCommittedObjectsThenNewGen()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        var replies = Messages(ep.Process(Batch(AddRule(9, "t", "c", w => Counter(w), flags: Create | NlmFlags.Append | NlmFlags.Echo)), Port));
        Assert.Equal(2, replies.Count);
        Assert.Equal(Nfnl.Type(Nfnl.SubsysNftables, 6), replies[0].H.Type);
        Assert.Equal(9u, replies[0].H.Seq);
        Assert.Equal(2ul, Be64(Attrs(replies[0].Bytes)[3]));
        Assert.Equal(Nfnl.Type(Nfnl.SubsysNftables, 15), replies[1].H.Type);
        Assert.Equal(3u, Be32(Attrs(replies[1].Bytes)[1]));
    }

    [Fact]
    public void AnonymousSetsTakeTheLowestFreeNumber()
    {
        var ep = NewEndpoint();
        ep.Process(Batch(AddTable(2, "t"), AddChain(3, "t", "c")), Port);
        byte[] AnonSetRule(uint seq, uint id) => AddRule(seq + 1, "t", "c", w =>
        {
            var e = w.BeginNested(1);
            w.PutString(1, "lookup");
            var d = w.BeginNested(2);
            w.PutString(1, "__set%d");
            w.PutU32Be(4, id);
            w.PutU32Be(2, 1);
            w.EndNested(d);
            w.EndNested(e);
        });
        byte[] AnonSet(uint seq, uint id) => Msg(9, Create, seq, Ip, w =>
        {
            w.PutString(1, "t");
            w.PutString(2, "__set%d");
            w.PutU32Be(3, 3); // anonymous | constant
            w.PutU32Be(4, 7);
            w.PutU32Be(5, 4);
            w.PutU32Be(10, id);
        });
        Assert.Empty(ep.Process(Batch(AnonSet(2, 1), AnonSetRule(3, 1), AnonSet(5, 2), AnonSetRule(6, 2)), Port));
        Assert.Equal(new[] { "__set0", "__set1" }, ep.Ruleset.Tables[0].Sets.Select(s => s.Name));
        // deleting the first rule frees __set0, which the next anonymous set takes again
        ulong first = ep.Ruleset.Tables[0].Chains[0].Rules[0].Handle;
        var del = Msg(8, Create, 2, Ip, w => { w.PutString(1, "t"); w.PutString(2, "c"); w.PutU64Be(3, first); });
        Assert.Empty(ep.Process(Batch(del), Port));
        Assert.Empty(ep.Process(Batch(AnonSet(2, 7), AnonSetRule(3, 7)), Port));
        Assert.Equal(new[] { "__set1", "__set0" }, ep.Ruleset.Tables[0].Sets.Select(s => s.Name));
        Assert.Equal("__set0", ExprRefs.SetName(ep.Ruleset.Tables[0].Chains[0].Rules[^1].Expressions[0]));
    }
}

/// <summary>Message type numbers used by the tests.</summary>
internal static class NftMsg16
{
    public const byte GetGen = 16;
}

public class OwnerTableTests
{
    [Fact]
    public void OwnedTablesArePrivateAndGoAwayWithTheirPort()
    {
        var ep = NewEndpoint();
        var own = Msg(0, Create, 2, Ip, w => { w.PutString(1, "own"); w.PutU32Be(2, 2 /* NFT_TABLE_F_OWNER */); });
        Assert.Empty(ep.Process(Batch(own, AddTable(3, "shared")), Port));
        // another port may not touch it
        var other = AddChain(2, "own", "c");
        Assert.Equal((Errno.EPERM, AttrOffset(other, 1)), Error(Assert.Single(Messages(ep.Process(Batch(other), Port + 1))).Bytes));
        Assert.Equal(0, ep.ReleasePort(Port + 1));
        Assert.Equal(1, ep.ReleasePort(Port));
        Assert.Equal(new[] { "shared" }, ep.Ruleset.Tables.Select(t => t.Name));
    }
}
