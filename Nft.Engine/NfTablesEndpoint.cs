using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// The kernel's nf_tables for one network namespace, in memory: batches are prepared against a copy
/// of the committed ruleset and swapped in all at once, replies (errors, ACKs, echoes, dumps) are
/// the datagrams the kernel would queue for the sender.
/// </summary>
public sealed partial class NfTablesEndpoint
{
    readonly NetnsState _ns;
    readonly object _lock = new();
    /// <summary>Where the request being processed puts its multicast notifications; null: nobody listens.</summary>
    List<NetlinkEvent>? _events;
    /// <summary>The request being processed reset counters (GETRULE_RESET, GETOBJ_RESET): the state is saved after it.</summary>
    bool _countersReset;
    /// <summary>
    /// A batch was aborted: like the kernel, it keeps the handles it allocated (they are not handed out
    /// again), so the saved state must learn the counters' new values or a restart would reuse them.
    /// </summary>
    bool _abortedBatch;

    public NfTablesEndpoint() : this(new NfTablesOptions()) { }

    public NfTablesEndpoint(NfTablesOptions options) => _ns = new NetnsState(options);

    /// <summary>The committed ruleset.</summary>
    public RulesetSnapshot Ruleset { get { lock (_lock) return _ns.Committed; } }

    /// <summary>Test seam: commits validate and diff every changed table and chain whole (the reference the change-following passes are compared with).</summary>
    internal bool WholePasses { set { lock (_lock) _ns.WholePasses = value; } }

    /// <summary>Test seam: how many changed tables kept the verdict of the record they changed from instead of being walked.</summary>
    internal int WalksSkipped { get { lock (_lock) return _ns.WalksSkipped; } }

    /// <summary>The full generation id (nft_net->base_seq).</summary>
    public uint Generation { get { lock (_lock) return _ns.Generation; } }

    /// <summary>
    /// Runs <paramref name="read"/> under the endpoint's lock as a request would run: it sees one committed
    /// generation, and the counters it reads come from one snapshot of the backend (bpfilterd's metrics scrape).
    /// </summary>
    public T Observe<T>(Func<RulesetReading, T> read)
    {
        lock (_lock)
        {
            _ns.Backend.BeginRequest();
            return read(new RulesetReading(_ns.Committed, _ns.Generation, _ns.Backend));
        }
    }

    /// <summary>
    /// The netlink socket with <paramref name="portId"/> was closed (NETLINK_URELEASE): tables it owns
    /// (NFT_TABLE_F_OWNER) go away with it, as nft_rcv_nl_event releases them. The socket server calls
    /// this when a requester's connection ends. Returns the number of tables released.
    /// </summary>
    public int ReleasePort(uint portId)
    {
        lock (_lock)
        {
            var owned = _ns.Committed.Tables.Where(t => t.IsOwned && t.Table.Owner == portId).ToList();
            if (owned.Count == 0) return 0;
            var next = _ns.Committed with { Tables = _ns.Committed.Tables.RemoveAll(t => owned.Contains(t)) };
            try
            {
                _ns.Backend.Prepare(new RulesetChange(() => SourceView.Of(next), false, []));
                _ns.Backend.Commit();
            }
            catch (NetlinkException)
            {
                // The release cannot be refused: the owner is gone. Leave the data plane as it was.
                _ns.Backend.Abort();
            }
            _ns.Committed = next;
            SaveState();
            return owned.Count;
        }
    }

    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId) => Process(request, portId, null);

    /// <summary>
    /// As <see cref="Process(ReadOnlySpan{byte}, uint)"/>; when <paramref name="events"/> is given (someone
    /// listens to NFNLGRP_NFTABLES), a commit appends the datagrams the kernel multicasts to the group.
    /// </summary>
    public IReadOnlyList<byte[]> Process(ReadOnlySpan<byte> request, uint portId, List<NetlinkEvent>? events)
    {
        var output = new List<byte[]>();
        lock (_lock)
        {
            _events = events;
            int eventsBefore = events?.Count ?? 0;
            try
            {
                _ns.Backend.BeginRequest();
                ProcessCore(request, portId, output);
                if (_countersReset || _abortedBatch)
                {
                    _countersReset = _abortedBatch = false;
                    SaveState();
                }
            }
            catch (Exception e)
            {
                // Last line of defence: the daemon must never fall over on input. Anything that got here
                // is a bug; the request is refused as a whole.
                output.Clear();
                events?.RemoveRange(eventsBefore, events.Count - eventsBefore);
                output.Add(MalformedError(request, portId, $"bpfilter-nft: internal error: {e.GetType().Name}: {e.Message}"));
            }
            finally
            {
                _events = null;
            }
        }
        return output;
    }

    static byte[] ErrorFor(ReadOnlySpan<byte> msg, uint portId, int errno, string? extack, int offset)
    {
        var w = new NetlinkWriter(64 + msg.Length);
        var h = msg.Length >= NlMsgHeader.Size ? NlMsgHeader.Read(msg) : new NlMsgHeader((uint)msg.Length, 0, 0, 0, 0);
        var body = msg.Length >= NlMsgHeader.Size ? msg[..(int)Math.Min((uint)msg.Length, Math.Max(h.Length, (uint)NlMsgHeader.Size))] : [];
        NetlinkAck.Write(w, body, h, errno, portId, extack, offset);
        return w.ToArray();
    }

    /// <summary>
    /// An error for bytes that are not a well-formed message. The kernel drops such input silently;
    /// we answer so the sender learns why, echoing only the (possibly partial) header, as a capped
    /// ACK does, so that the reply never claims more request bytes than it carries.
    /// </summary>
    static byte[] MalformedError(ReadOnlySpan<byte> bytes, uint portId, string why)
    {
        Span<byte> hdr = stackalloc byte[NlMsgHeader.Size];
        bytes[..Math.Min(bytes.Length, NlMsgHeader.Size)].CopyTo(hdr);
        var inner = NlMsgHeader.Read(hdr);
        var b = new NetlinkWriter(128);
        var m = b.BeginMessage(NlMsgType.Error, NlmFlags.Capped | NlmFlags.AckTlvs, inner.Seq, portId);
        Span<byte> err = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(err, -Errno.EINVAL);
        b.WriteRaw(err);
        b.WriteRaw(hdr);
        b.PutString(NlmsgErrAttr.Msg, why);
        b.EndMessage(m);
        return b.ToArray();
    }

    void ProcessCore(ReadOnlySpan<byte> request, uint portId, List<byte[]> output)
    {
        var reader = new NetlinkMessageReader(request);
        bool first = true;
        List<byte[]>? dumpRest = null;
        while (reader.TryRead(out var msg))
        {
            if (first && msg.Header.Type == Nfnl.MsgBatchBegin)
            {
                long start = System.Diagnostics.Stopwatch.GetTimestamp();
                var clock = new BatchClock();
                var (result, reason) = ProcessBatch(msg, request, reader.Position, portId, output, clock);
                _ns.Options.BatchFinished?.Invoke(new BatchOutcome(result, System.Diagnostics.Stopwatch.GetElapsedTime(start), reason, clock.Phases()));
                return;
            }
            first = false;
            ProcessSingle(msg, portId, output, ref dumpRest);
        }
        if (reader.Malformed)
            output.Add(MalformedError(reader.Rest, portId, "malformed netlink message header"));
        // A dump sends its first datagram while the request is being sent and the rest as nft reads.
        if (dumpRest != null) output.AddRange(dumpRest);
    }

    // ---- requests outside a batch (netlink_rcv_skb + nfnetlink_rcv_msg) ---------------------------

    void ProcessSingle(in NetlinkMessage msg, uint portId, List<byte[]> output, ref List<byte[]>? dumpRest)
    {
        var h = msg.Header;
        int err = 0;
        string? extack = null;
        int offset = -1;
        try
        {
            if (!h.Has(NlmFlags.Request) || h.Type < NlMsgType.MinType)
                err = 0; // control messages and non-requests are only acknowledged
            else if (msg.Bytes.Length < NlMsgHeader.Size + NfGenMsg.Size)
                err = Errno.EINVAL;
            else if (Nfnl.Subsys(h.Type) != Nfnl.SubsysNftables)
                err = Errno.EINVAL;
            else
            {
                byte m = Nfnl.Msg(h.Type);
                switch (m)
                {
                    case (byte)NftMsgType.GetGen: GetGen(msg, portId, output); break;
                    case (byte)NftMsgType.GetTable or (byte)NftMsgType.GetChain or (byte)NftMsgType.GetRule or (byte)NftMsgType.GetRuleReset or (byte)NftMsgType.GetSet
                        or (byte)NftMsgType.GetSetElem or (byte)NftMsgType.GetSetElemReset or (byte)NftMsgType.GetObj or (byte)NftMsgType.GetObjReset
                        or (byte)NftMsgType.GetFlowtable:
                        if ((msg.Header.Flags & NlmFlags.Dump) != 0 && dumpRest != null)
                        {
                            err = Errno.EBUSY; // netlink_dump_start: this socket's dump is still running
                            break;
                        }
                        var replies = new List<byte[]>();
                        if (Get(msg, m, portId, replies))
                        {
                            // dumps are never acknowledged
                            output.Add(replies[0]);
                            dumpRest = replies.GetRange(1, replies.Count - 1);
                            return;
                        }
                        output.AddRange(replies);
                        break;
                    default:
                        err = Errno.EINVAL; // batch-only operations, NEWGEN, TRACE, unknown types
                        break;
                }
            }
        }
        catch (NetlinkException e)
        {
            err = e.Errno;
            extack = e.ExtAck;
            offset = e.Offset;
        }
        if (err != 0 || h.Has(NlmFlags.Ack))
            output.Add(ErrorFor(msg.Bytes, portId, err, extack, offset));
    }

    void GetGen(in NetlinkMessage msg, uint portId, List<byte[]> output)
    {
        var b = new NetlinkWriter(64);
        WriteGen(b, (byte)NftMsgType.NewGen, NlmFlags.None, msg.Header.Seq, portId);
        output.Add(b.ToArray());
    }

    void WriteGen(NetlinkWriter b, byte type, NlmFlags flags, uint seq, uint portId)
    {
        var (pid, name) = Requester(portId);
        var m = b.BeginNfMessage(Nfnl.SubsysNftables, type, flags, seq, portId, NfProto.Unspec, _ns.ResId);
        b.PutU32Be(NftaGen.Id, _ns.Generation);
        b.PutU32Be(NftaGen.ProcPid, pid);
        b.PutString(NftaGen.ProcName, name);
        b.EndMessage(m);
    }

    (uint Pid, string Name) Requester(uint portId)
    {
        if (_ns.Options.Requester is { } f) return f(portId);
        string name = "nft";
        try
        {
            var comm = File.ReadAllText($"/proc/{portId}/comm").TrimEnd('\n');
            if (comm.Length > 0) name = comm;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return (portId, name);
    }

    // ---- batches (nfnetlink_rcv_batch) ---------------------------------------------------------

    readonly record struct Outcome(int MsgIndex, byte[] Message, NlMsgHeader Header, int Errno, string? ExtAck, int Offset);

    /// <summary>Handles a batch; returns how it ended and, for a refusal, its reason (<see cref="BatchOutcome"/>).</summary>
    (BatchResult, string?) ProcessBatch(in NetlinkMessage begin, ReadOnlySpan<byte> request, int restStart, uint portId, List<byte[]> output,
        BatchClock clock)
    {
        const string nfTables = BatchOutcome.NfTablesReason;
        var rest = request[restStart..];
        uint? genId = null;
        // nfnetlink reads the nfgenmsg and attributes of BATCH_BEGIN from the buffer even when its own
        // nlmsg_len is short; less than a header plus nfgenmsg in the whole send is ignored.
        if (request.Length < NlMsgHeader.Size + NfGenMsg.Size) return (BatchResult.Aborted, null);
        try
        {
            if (begin.Bytes.Length > NlMsgHeader.Size + NfGenMsg.Size)
            {
                var a = begin.AttributeTable(Nfnl.BatchGenId);
                if (a.TryGet(Nfnl.BatchGenId, out var g)) genId = g.U32Be();
            }
        }
        catch (NetlinkException e)
        {
            output.Add(ErrorFor(begin.Bytes, portId, e.Errno, e.ExtAck, e.Offset));
            return (BatchResult.Refused, nfTables);
        }
        var gm = request.Slice(NlMsgHeader.Size, NfGenMsg.Size);
        ushort resId = NfGenMsg.Read(gm).ResId;
        // Old nft wrote the subsystem in host order; the kernel accepts both.
        int subsys = resId == Nfnl.SubsysNftables || resId == (Nfnl.SubsysNftables << 8) ? Nfnl.SubsysNftables : resId;
        if (subsys != Nfnl.SubsysNftables)
        {
            output.Add(ErrorFor(begin.Bytes, portId, subsys >= 256 ? Errno.EINVAL : Errno.EOPNOTSUPP, null, -1));
            return (BatchResult.Refused, nfTables);
        }
        if (genId is uint gid && gid != 0 && gid != _ns.Generation)
        {
            output.Add(ErrorFor(begin.Bytes, portId, Errno.ERESTART, null, -1));
            return (BatchResult.Refused, nfTables);
        }

        clock.Restart();
        var (tx, outcomes, done, failed) = RunBatch(rest, portId, validateEachRule: false);
        clock.Applied();
        clock.Messages = tx.Messages;
        if (begin.Header.Has(NlmFlags.Ack))
            outcomes.Insert(0, new Outcome(-2, begin.Bytes.ToArray(), begin.Header, 0, null, -1));
        // nfnetlink hands the batch on with BATCH_BEGIN pulled off: what the commit reports (NEWGEN,
        // commit errors) is addressed with the first message after it.
        var firstMsg = FindMessage(rest, 0);
        byte[] beginBytes = firstMsg?.Bytes ?? begin.Bytes.ToArray();
        NlMsgHeader beginHeader = begin.Header;
        int commitErr = 0;
        string? commitExtAck = null;
        string reason = nfTables;
        var result = BatchResult.Aborted;
        if (done && !failed)
        {
            try
            {
                tx.ApplySetUpdates();
                tx.Validate();
                clock.Validated();
            }
            catch (NetlinkException e) when (e.Errno == Errno.EMLINK)
            {
                // The kernel aborts and replays the batch validating after every rule: the error then
                // lands on the messages after which the table no longer validates.
                clock.Validated();
                (tx, outcomes, done, failed) = RunBatch(rest, portId, validateEachRule: true);
                clock.Applied();
                if (begin.Header.Has(NlmFlags.Ack))
                    outcomes.Insert(0, new Outcome(-2, begin.Bytes.ToArray(), begin.Header, 0, null, -1));
                if (!failed)
                {
                    commitErr = e.Errno;
                }
            }
            catch (NetlinkException e)
            {
                commitErr = e.Errno;
                commitExtAck = e.ExtAck;
            }
        }
        if (done && !failed && commitErr == 0)
        {
            try
            {
                clock.Restart();
                if (tx.Changed) _ns.Backend.Prepare(tx.Change());
                clock.Prepared();
            }
            catch (BackendRefusal r)
            {
                _ns.Backend.Abort();
                reason = r.Reason;
                int idx = r.Table != null && r.RuleHandle is ulong rh && tx.Origins.TryGetValue((r.Family, r.Table, rh), out int i) ? i : -1;
                if (idx >= 0 && FindMessage(rest, idx) is { } bad)
                {
                    outcomes.Add(new Outcome(idx, bad.Bytes, bad.Header, r.Errno, r.ExtAck, ExpressionOffset(bad.Bytes, r.ExpressionIndex)));
                    outcomes.Sort((x, y) => x.MsgIndex.CompareTo(y.MsgIndex));
                }
                else
                {
                    commitErr = r.Errno;
                    commitExtAck = r.ExtAck;
                }
                failed = true;
            }
            catch (NetlinkException e)
            {
                _ns.Backend.Abort();
                reason = "backend";
                commitErr = e.Errno;
                commitExtAck = e.ExtAck;
                failed = true;
            }
            if (!failed && commitErr == 0)
            {
                Commit(tx, output, firstMsg?.Header ?? beginHeader, portId, clock);
                result = tx.Changed ? BatchResult.Committed : BatchResult.Unchanged;
            }
        }
        if (failed || commitErr != 0) _abortedBatch = true;
        if (commitErr != 0)
            output.Add(ErrorFor(beginBytes, portId, commitErr, commitExtAck, -1));
        foreach (var o in outcomes)
            output.Add(o.MsgIndex == -1
                ? MalformedError(o.Message, portId, o.ExtAck ?? "malformed")
                : ErrorFor(o.Message, portId, o.Errno, o.ExtAck, o.Offset));
        if (failed || commitErr != 0) return (BatchResult.Refused, reason);
        return (result, null);
    }

    /// <summary>
    /// Offset of the index-th NFTA_LIST_ELEM of a NEWRULE's NFTA_RULE_EXPRESSIONS (nft maps it to
    /// the statement's location and underlines it), or -1 when there is none.
    /// </summary>
    static int ExpressionOffset(byte[] newRule, int index)
    {
        if (index < 0) return -1;
        try
        {
            var r = new NetlinkMessageReader(newRule);
            if (!r.TryRead(out var msg)) return -1;
            var attrs = msg.Attributes();
            while (attrs.TryRead(out var a))
            {
                if (a.Type != NftaRule.Expressions) continue;
                var list = a.Nested();
                for (int i = 0; list.TryRead(out var elem); i++)
                    if (i == index) return elem.Offset;
            }
        }
        catch (NetlinkException)
        {
            // The message was validated when it was applied; a failure here only loses the underline.
        }
        return -1;
    }

    static (byte[] Bytes, NlMsgHeader Header)? FindMessage(ReadOnlySpan<byte> rest, int index)
    {
        var r = new NetlinkMessageReader(rest);
        for (int i = 0; r.TryRead(out var m); i++)
            if (i == index) return (m.Bytes.ToArray(), m.Header);
        return null;
    }

    (Transaction Tx, List<Outcome> Outcomes, bool Done, bool Failed) RunBatch(ReadOnlySpan<byte> rest, uint portId, bool validateEachRule)
    {
        var tx = new Transaction(_ns, portId) { ValidateEachRule = validateEachRule };
        var outcomes = new List<Outcome>();
        bool done = false, failed = false;
        Outcome? endAck = null;
        int pos = 0, index = 0;
        while (rest.Length - pos >= NlMsgHeader.Size)
        {
            var h = NlMsgHeader.Read(rest[pos..]);
            if (h.Length < NlMsgHeader.Size || h.Length > rest.Length - pos || h.Length < NlMsgHeader.Size + NfGenMsg.Size)
            {
                // A broken message ends the batch and discards the errors collected so far; we still
                // answer it so that the sender learns why nothing happened.
                outcomes.Clear();
                outcomes.Add(new Outcome(-1, rest[pos..Math.Min(rest.Length, pos + NlMsgHeader.Size)].ToArray(),
                    h, Errno.EINVAL, "malformed netlink message in batch", -1));
                failed = true;
                break;
            }
            var msg = new NetlinkMessage(h, rest.Slice(pos, (int)h.Length));
            int err = 0;
            string? extack = null;
            int offset = -1;
            if (!h.Has(NlmFlags.Request)) err = Errno.EINVAL;
            else if (h.Type == Nfnl.MsgBatchBegin)
            {
                outcomes.Clear();
                outcomes.Add(new Outcome(index, msg.Bytes.ToArray(), h, Errno.EINVAL, "batch begin inside a batch", -1));
                failed = true;
                break;
            }
            else if (h.Type == Nfnl.MsgBatchEnd)
            {
                done = true;
                if (h.Has(NlmFlags.Ack)) endAck = new Outcome(int.MaxValue, msg.Bytes.ToArray(), h, 0, null, -1);
                break;
            }
            else if (h.Type < NlMsgType.MinType || Nfnl.Subsys(h.Type) != Nfnl.SubsysNftables || Nfnl.Msg(h.Type) >= ((byte)NftMsgType.DelDev + 1))
                err = Errno.EINVAL;
            else
            {
                try
                {
                    tx.Apply(msg, index);
                }
                catch (NetlinkException e)
                {
                    err = e.Errno;
                    extack = e.ExtAck;
                    offset = e.Offset;
                }
            }
            if (err != 0 || h.Has(NlmFlags.Ack))
            {
                outcomes.Add(new Outcome(index, msg.Bytes.ToArray(), h, err, extack, offset));
                if (err != 0) failed = true;
            }
            pos += NetlinkLimits.Align((int)h.Length);
            index++;
        }
        if (endAck is { } ea) outcomes.Add(ea);
        return (tx, outcomes, done, failed);
    }

    /// <summary>
    /// A replaced rule is a new rule in the kernel (its counters start at zero) under the old handle; the
    /// backend keys counters by handle, so its running totals become the new zero (a rule replaced and then
    /// deleted in the same batch is not there any more).
    /// </summary>
    void ResetReplacedRule(RulesetSnapshot work, byte family, string table, ulong handle)
    {
        if (work.FindTable(family, table) is not { } t) return;
        foreach (var c in t.Chains)
        {
            var i = c.IndexOfRule(handle);
            if (i < 0) continue;
            var r = c.Rules[i];
            for (int e = 0; e < r.Expressions.Count; e++)
                if (r.Expressions[e] is Nft.Bytecode.Expressions.CounterExpr)
                    _ns.Backend.ResetCounter(new CounterRef(family, table, c.Name, handle, e, null));
            return;
        }
    }

    /// <param name="first">the batch's first message after BATCH_BEGIN: its seq and NLM_F_ECHO address NEWGEN</param>
    void Commit(Transaction tx, List<byte[]> output, NlMsgHeader first, uint portId, BatchClock clock)
    {
        var before = _ns.Committed;
        _ns.Committed = tx.Work;
        if (!tx.Changed)
        {
            return;
        }
        // a removed element's notification shows its counter as counted so far, which the backend's commit drops
        if (_events != null || tx.Notifications.Any(n => n.Report)) tx.CaptureLiveState();
        _ns.Backend.Commit();
        foreach (var (family, table, handle) in tx.ReplacedRules) ResetReplacedRule(tx.Work, family, table, handle);
        clock.Committed();
        uint from = _ns.Generation;
        do _ns.Generation++; while (_ns.Generation == 0);
        // element-only and rule-only commits are appended to the saved state (StateCodec.Journal), not saved whole
        if (!(tx.StructureChanged ? JournalRules(from, before, tx) : Journal(from, tx.TouchedElements()))) SaveState();
        clock.Saved();
        SendNotifications(tx, output, first, portId);
        clock.Notified();
    }

    /// <summary>The commit's notifications: echoed to the requester (its NLM_F_ECHO messages), multicast to listeners.</summary>
    void SendNotifications(Transaction tx, List<byte[]> output, NlMsgHeader first, uint portId)
    {
        bool genReport = first.Has(NlmFlags.Echo);
        var events = _events;
        // nf_tables_*_notify builds nothing when nobody listens and the requester asked for no echo.
        var encoded = new List<(byte[] Bytes, bool Report)>();
        foreach (var (_, report, encode, count) in tx.Notifications)
        {
            if (!report && events == null) continue;
            for (int i = 0; i < count; i++)
            {
                var w = new NetlinkWriter(256);
                encode(w, _ns.ResId, i);
                encoded.Add((w.ToArray(), report));
            }
        }
        // The requester's echo: its notifications, then NEWGEN when the first message asked for echoes.
        if (genReport || encoded.Any(e => e.Report))
        {
            var b = new NetlinkWriter(4096);
            foreach (var (bytes, report) in encoded)
            {
                if (!report) continue;
                int start = b.Length;
                b.WriteRaw(bytes);
                if (b.Length > DaemonFrame.DumpChunk && start > 0)
                {
                    output.Add(b.WrittenSpan[..start].ToArray());
                    b.Clear();
                    b.WriteRaw(bytes);
                }
            }
            if (genReport) WriteGen(b, (byte)NftMsgType.NewGen, NlmFlags.None, first.Seq, portId);
            if (b.Length > 0) output.Add(b.ToArray());
        }
        if (events == null) return;
        // nft_commit_notify: consecutive notifications with the same report flag share an skb up to
        // NLMSG_GOODSIZE; nfnetlink_send multicasts each, leaving out the requester when it was echoed.
        var m = new NetlinkWriter(4096);
        bool mReport = false;
        foreach (var (bytes, report) in encoded)
        {
            if (m.Length > 0 && (report != mReport || m.Length + bytes.Length > DaemonFrame.DumpChunk))
            {
                events.Add(new NetlinkEvent(m.ToArray(), mReport ? portId : null));
                m.Clear();
            }
            mReport = report;
            m.WriteRaw(bytes);
        }
        if (m.Length > 0) events.Add(new NetlinkEvent(m.ToArray(), mReport ? portId : null));
        // nf_tables_gen_notify: its own skb, after the changes.
        var g = new NetlinkWriter(128);
        WriteGen(g, (byte)NftMsgType.NewGen, NlmFlags.None, first.Seq, portId);
        events.Add(new NetlinkEvent(g.ToArray(), genReport ? portId : null));
    }
}
