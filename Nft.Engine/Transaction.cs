using System.Collections.Immutable;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// One batch being prepared: a working snapshot that each message edits, the ids the batch gives to
/// new objects (NFTA_*_ID), and the notifications it sends if it commits. Nothing here touches the
/// committed state; the endpoint swaps the snapshot in on commit or drops it on abort.
/// </summary>
internal sealed partial class Transaction
{
    readonly NetnsState _ns;
    RulesetSnapshot _work;

    /// <summary>
    /// The working snapshot, with the rules appended since the last read in place (<see cref="PendingAppends"/>). Setting it
    /// drops appends not yet read: the value set was made from a read, which took them in, or restores an older snapshot.
    /// </summary>
    public RulesetSnapshot Work
    {
        get
        {
            if (_pending != null) TakeInAppends();
            return _work;
        }
        set
        {
            _pending = null;
            _work = value;
        }
    }
    public readonly uint PortId;

    /// <summary>The message being processed: header and index within the batch.</summary>
    NlMsgHeader _req;
    int _msgIndex;

    readonly Dictionary<uint, (byte Family, string Table, ulong Handle)> _chainIds = new();
    readonly Dictionary<uint, (byte Family, string Table, ulong Handle)> _setIds = new();
    /// <summary>Chains this batch renamed (by handle), with the name they answer to until commit.</summary>
    readonly Dictionary<(byte Family, string Table, ulong Handle), string> _renamed = new();
    readonly Dictionary<uint, (byte Family, string Table, ulong Chain, ulong Handle)> _ruleIds = new();
    /// <summary>Which batch message created a rule or chain, so a backend refusal can blame it.</summary>
    public readonly Dictionary<(byte, string, ulong), int> Origins = new();
    /// <summary>
    /// Rules this batch replaced (NEWRULE with a handle): the kernel's replacement is a new rule whose
    /// counters start at zero, so at commit the backend's counters for the handle are reset.
    /// </summary>
    public readonly List<(byte Family, string Table, ulong Handle)> ReplacedRules = new();
    /// <summary>Sets created by this batch (handles), for the unbound anonymous set check at commit.</summary>
    readonly HashSet<(byte, string, ulong)> _newSets = new();

    /// <summary>
    /// The notifications of this batch in the order nf_tables_commit sends them (one per change, in batch
    /// order); Report: the message asked for NLM_F_ECHO, so its requester gets it too (ctx->report). An entry
    /// stands for Count notifications in a row, encode(.., i) writing the i-th: a NEWSETELEM of thousands of
    /// elements queues one entry, not an entry and two closures per element.
    /// </summary>
    public readonly List<(NlMsgHeader Request, bool Report, Action<NetlinkWriter, ushort, int> Encode, int Count)> Notifications = new();
    /// <summary>
    /// Reads of live state to take just before the backend commits: a DELSETELEM notification carries the
    /// removed element's expressions as they stand then (nf_tables_commit notifies with the element's counter
    /// at its current count), and after the backend's commit the element's data-plane state is gone.
    /// </summary>
    readonly List<Action> _liveCaptures = new();
    public bool Changed { get; private set; }
    /// <summary>The batch messages applied so far (the daemon's log of slow batches counts them).</summary>
    public int Messages { get; private set; }
    public bool StructureChanged { get; private set; }
    /// <summary>The rules this batch added, replaced and removed.</summary>
    public readonly RuleTouches Touches = new();
    /// <summary>Elements this batch added to and removed from sets that existed before it, per set.</summary>
    readonly Dictionary<(byte Family, string Table, string Set), ElementDelta> _deltas = new();

    public Transaction(NetnsState ns, uint portId)
    {
        _ns = ns;
        _work = ns.Committed;
        PortId = portId;
    }

    NftEncoder Enc => _ns.Encoder;

    /// <summary>Applies one batch message; throws NetlinkException for what the kernel refuses.</summary>
    public void Apply(in NetlinkMessage m, int index)
    {
        _req = m.Header;
        _msgIndex = index;
        Messages++;
        byte msg = Nfnl.Msg(m.Header.Type);
        byte family = m.GenMsg.Family;
        switch (msg)
        {
            case (byte)NftMsgType.NewTable: NewTable(m, family); break;
            case (byte)NftMsgType.DelTable: DelTable(m, family, false); break;
            case (byte)NftMsgType.DestroyTable: DelTable(m, family, true); break;
            case (byte)NftMsgType.NewChain: NewChain(m, family); break;
            case (byte)NftMsgType.DelChain: DelChain(m, family, false); break;
            case (byte)NftMsgType.DestroyChain: DelChain(m, family, true); break;
            case (byte)NftMsgType.NewRule: NewRule(m, family); break;
            case (byte)NftMsgType.DelRule: DelRule(m, family, false); break;
            case (byte)NftMsgType.DestroyRule: DelRule(m, family, true); break;
            case (byte)NftMsgType.NewSet: NewSet(m, family); break;
            case (byte)NftMsgType.DelSet: DelSet(m, family, false); break;
            case (byte)NftMsgType.DestroySet: DelSet(m, family, true); break;
            case (byte)NftMsgType.NewSetElem: NewSetElem(m, family); break;
            case (byte)NftMsgType.DelSetElem: DelSetElem(m, family, false); break;
            case (byte)NftMsgType.DestroySetElem: DelSetElem(m, family, true); break;
            case (byte)NftMsgType.NewObj: NewObj(m, family); break;
            case (byte)NftMsgType.DelObj: DelObj(m, family, false); break;
            case (byte)NftMsgType.DestroyObj: DelObj(m, family, true); break;
            case (byte)NftMsgType.NewFlowtable:
                NewFlowtable(m, family);
                break;
            case (byte)NftMsgType.DelFlowtable:
            case (byte)NftMsgType.DestroyFlowtable:
                throw new NetlinkException(Errno.EOPNOTSUPP, "bpfilter-nft: flowtables are not supported");
            default:
                // Types that exist but are not batch operations (GET*, NEWGEN, TRACE) are refused by
                // nfnetlink with EINVAL inside a batch.
                throw new NetlinkException(Errno.EINVAL);
        }
    }

    /// <summary>
    /// Flowtables have no BPF equivalent and are refused; the kernel has allocated the flowtable's
    /// handle by the time a bad hook fails it, so the refusal uses one up too.
    /// </summary>
    void NewFlowtable(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(3);
        if (!a.Has(NftaFlowtable.Table) || !a.Has(NftaFlowtable.Name) || !a.Has(3)) throw Err(Errno.EINVAL);
        int ti = TableIndex(a, NftaFlowtable.Table, family);
        Work.Tables[ti].Handles.Next();
        throw new NetlinkException(Errno.EOPNOTSUPP, "bpfilter-nft: flowtables are not supported");
    }

    void MarkChanged(bool structure = true)
    {
        Changed = true;
        if (structure) StructureChanged = true;
    }

    bool Echo => _req.Has(NlmFlags.Echo);

    /// <summary>Takes the live reads the notifications need; called before the backend commits, only when someone gets them.</summary>
    public void CaptureLiveState()
    {
        foreach (var c in _liveCaptures) c();
    }

    /// <summary>
    /// Queues the notification the kernel sends for this message's change: to NFNLGRP_NFTABLES listeners,
    /// and echoed to the requester when it asked for NLM_F_ECHO. Encoded only at commit, and only if wanted.
    /// </summary>
    void Notify(Action<NetlinkWriter, NftEncoder.Header> encode, byte msg, NlmFlags flags)
    {
        var req = _req;
        uint port = PortId;
        Notifications.Add((req, Echo, (b, resId, _) => encode(b, new NftEncoder.Header(msg, flags, req.Seq, port, resId)), 1));
    }

    /// <summary><see cref="Notify"/> for <paramref name="count"/> notifications of one message, the i-th written by encode(.., i).</summary>
    void NotifyEach(int count, Action<NetlinkWriter, NftEncoder.Header, int> encode, byte msg, NlmFlags flags)
    {
        var req = _req;
        uint port = PortId;
        if (count > 0) Notifications.Add((req, Echo, (b, resId, i) => encode(b, new NftEncoder.Header(msg, flags, req.Seq, port, resId), i), count));
    }

    /// <summary>
    /// DELRULE, then DELSET for each anonymous set the rule was bound to: nf_tables_commit releases the rule's
    /// expressions right after notifying it, and nf_tables_unbind_set notifies an anonymous set losing its binding.
    /// </summary>
    void NotifyRuleGone(TableRecord t, ChainRecord c, RuleRecord r)
    {
        Notify((b, h) => Enc.Rule(b, h, t, c, r, null), (byte)NftMsgType.DelRule, NlmFlags.None);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in r.Expressions)
            if (ExprRefs.SetName(e) is string name && seen.Add(name) && t.Sets.FirstOrDefault(x => x.Name == name) is { IsAnonymous: true } set)
                Notify((b, h) => Enc.Set(b, h, t, set), (byte)NftMsgType.DelSet, NlmFlags.None);
    }

    NlmFlags CreateExcl => _req.Flags & (NlmFlags.Create | NlmFlags.Excl);

    // ---- lookups -----------------------------------------------------------------------------

    static NetlinkException Err(int errno, int offset = -1, string? msg = null) => new(errno, msg, offset);

    static string ReadName(NetlinkAttribute a, int max = NftLimits.NameMaxLen - 1)
    {
        var p = a.Payload;
        int nul = p.IndexOf((byte)0);
        int len = nul >= 0 ? nul : p.Length;
        // NLA_STRING with .len = NFT_NAME_MAXLEN - 1: longer payloads fail policy validation
        if (p.Length > max + 1 || len > max) throw new NetlinkException(Errno.ERANGE, "Attribute failed policy validation", a.Offset);
        return NetlinkString.Decode(p[..len], a.Offset, a.Type);
    }

    static uint U32(NetlinkAttribute a)
    {
        if (a.Payload.Length < 4) throw new NetlinkException(Errno.ERANGE, "Attribute failed policy validation", a.Offset);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.Payload);
    }

    static ulong U64(NetlinkAttribute a)
    {
        if (a.Payload.Length < 8) throw new NetlinkException(Errno.ERANGE, "Attribute failed policy validation", a.Offset);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(a.Payload);
    }

    /// <summary>nft_table_lookup: by name and family; owned tables are private to their owner.</summary>
    int TableIndex(in AttributeTable a, ushort attr, byte family)
    {
        if (!a.TryGet(attr, out var na)) throw Err(Errno.EINVAL);
        string name = ReadName(na);
        // _work, not Work: appends not yet taken in change one chain's rules, never which tables there are
        int i = _work.IndexOfTable(family, name);
        if (i < 0) throw Err(Errno.ENOENT, na.Offset);
        var t = _work.Tables[i];
        if (t.OwnedByOther(PortId)) throw Err(Errno.EPERM, na.Offset);
        return i;
    }

    void PutTable(int i, TableRecord t) => Work = Work with { Tables = Work.Tables.SetItem(i, t) };

    /// <summary>References into a table: chain use (rules + jumps), set bindings, object references.</summary>
    internal static Dictionary<string, int> ChainRefs(TableRecord t)
    {
        var refs = new Dictionary<string, int>(StringComparer.Ordinal);
        // a jump or goto (rule or verdict-map element) names a regular chain of its table (CheckVerdict: a base chain is
        // EOPNOTSUPP, another table's ENOENT; a rename renames the references) and a regular chain never turns base
        // (ChainOps): a table of base chains alone is referenced nowhere, and its rules need no walk (10,000 rules
        // cost each `nft add rule`'s chain dump 5 ms, issue 12)
        if (!HasRegularChain(t)) return refs;
        return ChainRefsWalk(t, refs);
    }

    static bool HasRegularChain(TableRecord t)
    {
        foreach (var c in t.Chains)
            if (!c.IsBase) return true;
        return false;
    }

    /// <summary><see cref="ChainRefs"/> from every rule and verdict-map element, whatever chains the table has (tests compare).</summary>
    internal static Dictionary<string, int> ChainRefsWalk(TableRecord t) => ChainRefsWalk(t, new Dictionary<string, int>(StringComparer.Ordinal));

    static Dictionary<string, int> ChainRefsWalk(TableRecord t, Dictionary<string, int> refs)
    {
        foreach (var c in t.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions)
                    if (ExprRefs.ChainTarget(e) is string target) refs[target] = refs.GetValueOrDefault(target) + 1;
        foreach (var s in t.Sets)
            if (s.IsVerdictMap)
                foreach (var el in s.Elements)
                    if (el.Verdict?.Chain is string ch) refs[ch] = refs.GetValueOrDefault(ch) + 1;
        return refs;
    }

    internal static int SetUse(TableRecord t, string set)
    {
        int n = 0;
        foreach (var c in t.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions)
                    if (ExprRefs.SetName(e) == set) n++;
        return n;
    }

    internal static int ObjectUse(TableRecord t, ObjectRecord o)
    {
        int n = 0;
        foreach (var c in t.Chains)
            foreach (var r in c.Rules)
                foreach (var e in r.Expressions)
                    if (ExprRefs.Object(e) is var (name, type) && name == o.Name && type == o.Type) n++;
        foreach (var s in t.Sets)
            if (s.IsObjectMap && s.Set.ObjType == o.Type)
                foreach (var el in s.Elements)
                    if (el.ObjRef == o.Name) n++;
        return n;
    }

    /// <summary>Commit-time checks the kernel makes on the whole transaction (nf_tables_commit prologue).</summary>
    public void Validate()
    {
        foreach (var t in Work.Tables)
            foreach (var s in t.Sets)
                if (s.IsAnonymous && _newSets.Contains((t.Family, t.Name, s.Handle)) && SetUse(t, s.Name) == 0)
                    throw Err(Errno.EINVAL, -1, "anonymous set is not bound to any rule");
        // nf_tables validates only when the batch asked for it (NFT_VALIDATE_NEED: a rule added, or an element whose
        // verdict jumps or goes to a chain); an element batch without such verdicts cannot add a path between chains,
        // and walking every rule and verdict map element would cost each `add element` the size of the ruleset
        if (!StructureChanged && !_deltas.Values.Any(d => d.Touched.Values.Any(x => x.After?.Verdict?.IsJumpOrGoto == true))) return;
        foreach (var t in Work.Tables)
        {
            // a table this batch did not touch is the record that passed at its own commit: nothing in it changed
            var was = _ns.Committed.FindTable(t.Family, t.Name);
            if (ReferenceEquals(was, t)) continue;
            // a table whose walk is the walk of a record that passed: the same verdict, without walking every rule
            if (!_ns.WholePasses && was != null && _ns.Validated.TryGetValue(was, out _) && SameWalk(was, t))
            {
                _ns.WalksSkipped++;
                _ns.Validated.AddOrUpdate(t, Passed);
                continue;
            }
            ChainValidator.Validate(t);
            _ns.Validated.AddOrUpdate(t, Passed);
        }
    }

    static readonly object Passed = new();

    /// <summary>
    /// Whether <see cref="ChainValidator.Validate"/> walks <paramref name="now"/> exactly as <paramref name="was"/>: the same
    /// chains (names, base or not, in the same order), rules that differ only where this batch added, replaced or removed
    /// rules that jump to no chain and name no set (<see cref="Touches"/>), and the same verdict maps. The walk visits the
    /// same chains at the same depths in the same order then, so it gives the same verdict. Cost: per chain and set a
    /// reference comparison.
    /// </summary>
    bool SameWalk(TableRecord was, TableRecord now)
    {
        if (!Touches.Complete || Touches.TouchedReferences(now.Family, now.Name)) return false;
        if (was.Chains.Count != now.Chains.Count) return false;
        for (int i = 0; i < now.Chains.Count; i++)
            if (!ReferenceEquals(was.Chains[i].Chain, now.Chains[i].Chain)) return false;
        if (ReferenceEquals(was.Sets, now.Sets)) return true;
        if (was.Sets.Count != now.Sets.Count) return false;
        for (int i = 0; i < now.Sets.Count; i++)
        {
            SetRecord a = was.Sets[i], b = now.Sets[i];
            // a set that is not a verdict map adds no edge, whatever its elements
            if (!ReferenceEquals(a, b) && (!ReferenceEquals(a.Set, b.Set) || b.IsVerdictMap)) return false;
        }
        return true;
    }

    /// <summary>
    /// Records that an element went in (or out) of a set. Per key only the state before the batch and
    /// the latest one count: removing an element and adding it back with other data (a map value or a
    /// verdict) is a change of value, and adding it back unchanged is none.
    /// </summary>
    void TrackElement(TableRecord t, SetRecord s, ElementRecord e, bool added)
    {
        var key = (t.Family, t.Name, s.Name);
        if (!_deltas.TryGetValue(key, out var d)) _deltas[key] = d = new ElementDelta();
        // an element deleted and added back is another element (nft_set_elem_init: new counters, quotas, limits), even
        // unchanged: one with such statements is renewed (one without has nothing that could tell)
        bool stateful = e.Element.Expr != null || e.Element.Expressions is { Count: > 0 };
        if (d.Touched.TryGetValue(e.Id, out var seen))
            d.Touched[e.Id] = seen with
            {
                After = added ? e : null,
                Renewed = seen.Renewed || added && seen.Before != null && seen.After == null && stateful,
            };
        else if (!added) d.Touched[e.Id] = new ElementTouch(e, null);
        else
        {
            // an added key may have been there before the batch: an element whose timeout was renewed (the same
            // element), or one that had expired, which the add replaced by a new one (as deleted and added back)
            ElementRecord? before = null;
            if (Before(t, s) is { } was && was.Elements.TryGetValue(e.Id, out var old)) before = old;
            bool expired = before?.ExpiresAtMs is long gone && gone <= _ns.NowMs();
            d.Touched[e.Id] = new ElementTouch(before, e, expired && stateful);
        }
    }

    /// <summary>What the backend is asked to enforce: the proposed ruleset and the element deltas.</summary>
    public RulesetChange Change()
    {
        var work = Work;
        var deltas = _deltas
            .Select(kv => new SetDelta(kv.Key.Family, kv.Key.Table, kv.Key.Set,
                kv.Value.Added().Select(SourceView.Element).ToList(),
                kv.Value.Removed().Select(SourceView.Element).ToList()))
            .Where(d => d.Added.Count + d.Removed.Count > 0)
            .ToList();
        var renewed = _deltas.SelectMany(kv => kv.Value.Renewed().Select(e => (kv.Key.Family, kv.Key.Table, kv.Key.Set, SourceView.Element(e)))).ToList();
        // a renewed element's state is set anew by a full commit, not by map updates
        var recreated = Recreated(work);
        return new RulesetChange(() => SourceView.Of(work), !StructureChanged && deltas.Count > 0 && renewed.Count == 0, deltas) { RenewedElements = renewed, RecreatedSets = recreated.Sets, RecreatedTables = recreated.Tables,
            RecreatedObjects = recreated.Objects };
    }

    /// <summary>What of <paramref name="work"/> was committed before by the same name in another object (deleted and added back in this batch).</summary>
    /// <param name="Tables">Tables that got another handle.</param>
    /// <param name="Sets">Sets whose table or themselves got another handle.</param>
    /// <param name="Objects">Named objects of the same name and type whose table or themselves got another handle (a re-created table hands out object handles from 1 again).</param>
    readonly record struct Recreation(List<(byte Family, string Table)> Tables, List<(byte Family, string Table, string Set)> Sets,
        List<(byte Family, string Table, string Object, uint Type)> Objects);

    /// <summary>
    /// One walk of <paramref name="work"/>'s tables against the committed ruleset for the tables, sets and named
    /// objects the batch re-created (none unless its structure changed).
    /// </summary>
    Recreation Recreated(RulesetSnapshot work)
    {
        var recreated = new Recreation([], [], []);
        if (!StructureChanged) return recreated;
        foreach (var t in work.Tables)
        {
            if (_ns.Committed.FindTable(t.Family, t.Name) is not { } ct) continue;
            var tableRecreated = ct.Handle != t.Handle;
            if (tableRecreated) recreated.Tables.Add((t.Family, t.Name));
            foreach (var s in t.Sets)
                if (ct.FindSet(s.Name) is { } was && (tableRecreated || was.Handle != s.Handle)) recreated.Sets.Add((t.Family, t.Name, s.Name));
            foreach (var o in t.Objects)
                if (ct.IndexOfObject(o.Name, o.Type) is int i and >= 0 && (tableRecreated || ct.Objects[i].Handle != o.Handle))
                    recreated.Objects.Add((t.Family, t.Name, o.Name, o.Type));
        }
        return recreated;
    }

    /// <summary>
    /// For the element journal (<see cref="StateCodec.JournalRecord"/>): every key this batch touched in sets
    /// that existed before it, with what it holds now (null: absent). Written as they are now, not as a net
    /// change, so that a renewed timeout or a new insertion order is kept too.
    /// </summary>
    public IEnumerable<StateCodec.SetTouch> TouchedElements() =>
        _deltas.Select(kv => new StateCodec.SetTouch(kv.Key.Family, kv.Key.Table, kv.Key.Set,
            kv.Value.Touched.Select(x => (x.Key, x.Value.After)).ToList()));

    /// <summary>One key of a set: what it held before the batch and what it holds now (null: absent).</summary>
    /// <param name="Renewed">The key was deleted (or had expired) and added back in the batch: the element now is another one than before it.</param>
    readonly record struct ElementTouch(ElementRecord? Before, ElementRecord? After, bool Renewed = false);

    sealed class ElementDelta
    {
        public readonly Dictionary<ElementKey, ElementTouch> Touched = new();

        /// <summary>Keys present now with a value or expiry they did not have before (new keys, changed values, renewed timeouts: an upsert).</summary>
        public IEnumerable<ElementRecord> Added() =>
            Touched.Values.Where(x => x.After != null && (x.Before == null || !Equals(x.Before.Element, x.After.Element)
                || x.Before.ExpiresAtMs != x.After.ExpiresAtMs)).Select(x => x.After!);

        /// <summary>Keys present before and now, deleted and added back in between.</summary>
        public IEnumerable<ElementRecord> Renewed() => Touched.Values.Where(x => x.Renewed && x.After != null).Select(x => x.After!);

        /// <summary>Keys present before and absent now.</summary>
        public IEnumerable<ElementRecord> Removed() =>
            Touched.Values.Where(x => x.Before != null && x.After == null).Select(x => x.Before!);
    }
}

/// <summary>State of one network namespace: committed ruleset, generation, table handle counter, clock.</summary>
internal sealed class NetnsState
{
    public RulesetSnapshot Committed = RulesetSnapshot.Empty;
    /// <summary>nft_net->base_seq: starts at 1 in a fresh namespace, never 0.</summary>
    public uint Generation = 1;
    public ulong TableHandle;
    /// <summary>Orders set elements by insertion, which is how pipapo (concatenated interval) sets dump.</summary>
    public long ElementSeq;
    public readonly Func<long> NowMs;
    /// <summary>
    /// NowMs minus the monotonic clock, read once: saved with the state so that a later process on another
    /// clock can move element deadlines (see StateCodec); adopted from a state saved on this same clock.
    /// </summary>
    public long ClockOffsetMs;
    public readonly NftEncoder Encoder;
    public readonly IRulesetBackend Backend;
    public readonly NfTablesOptions Options;
    /// <summary>Table records <see cref="ChainValidator.Validate"/> passed (records are immutable: a fact about the record).</summary>
    public readonly System.Runtime.CompilerServices.ConditionalWeakTable<TableRecord, object> Validated = new();
    /// <summary>Test seam: validate and diff every changed table and chain whole, as before the commit followed the change.</summary>
    public bool WholePasses;
    /// <summary>Test seam: changed tables whose validation walk was skipped as the walk of a record that passed.</summary>
    public int WalksSkipped;

    public NetnsState(NfTablesOptions options)
    {
        Options = options;
        Backend = options.Backend ?? NullRulesetBackend.Instance;
        NowMs = options.Clock ?? (() => Environment.TickCount64);
        ClockOffsetMs = NowMs() - (options.Monotonic ?? (() => Environment.TickCount64))();
        Encoder = new NftEncoder(Backend, NowMs);
    }

    public ushort ResId => (ushort)Generation;

    /// <summary>A timeout or expiration from netlink in whole jiffies, as nf_msecs_to_jiffies64 keeps it (in milliseconds).</summary>
    public ulong Ticks(ulong ms) => ms / (ulong)Math.Max(1, Options.TickMs) * (ulong)Math.Max(1, Options.TickMs);
}
