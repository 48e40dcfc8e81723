using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Kernel;

/// <summary>A table as identified in nf_tables: family and name.</summary>
public readonly record struct TableKey(byte Family, string Name)
{
    public override string ToString() => $"{FamilyNames.Of(Family)} {Name}";
}

/// <summary>What the kernel holds for one table: the caller's content and, per caller rule handle, the kernel's handle.</summary>
internal sealed record PlacedTable(SourceTable Source, IReadOnlyDictionary<ulong, ulong> KernelRuleHandles)
{
    /// <summary>A table found in the kernel that is not known to hold <see cref="Source"/>: the next transition recreates or deletes it.</summary>
    public bool Stale { get; init; }
}

/// <summary>nfproto names as nft prints them.</summary>
public static class FamilyNames
{
    public static string Of(byte family) => family switch
    {
        1 => "inet", 2 => "ip", 3 => "arp", 5 => "netdev", 7 => "bridge", 10 => "ip6", _ => $"family {family}",
    };
}

/// <summary>
/// Builds the one batch that takes the kernel from what was placed to what is desired. Per table:
/// added tables are created, removed ones deleted (DELTABLE takes their content along); a kept table
/// changes incrementally (rules, chains, named sets, elements, objects and flowtables added or
/// removed; base chain policies updated) so that untouched rules keep counting in the kernel. What
/// nf_tables cannot change in place (a chain's hook, type or comment; a set's definition; an object's
/// parameters; table flags; a rule whose handle was reused for other content) recreates the whole
/// table in the same batch (DELTABLE, then everything again), carrying the counters read from the
/// kernel just before. Inside one batch no packet ever sees a half-built ruleset.
/// </summary>
internal sealed class TransitionPlanner
{
    /// <summary>Elements per NEWSETELEM message are cut so that the elements nest stays well under its 64 KiB length field.</summary>
    const int ElementChunkBytes = 32 << 10;

    readonly KernelBatch _batch = new();
    readonly Func<TableKey, KernelCounters> _kernelCounters;
    readonly Dictionary<(TableKey, string), PacketPathSet> _packetPath;
    readonly KernelRenewal _renewed;
    readonly Func<LimitAt, string?>? _limitMatch;
    uint _nextId = 1;

    TransitionPlanner(Func<TableKey, KernelCounters> kernelCounters, IEnumerable<PacketPathSet> packetPath, KernelRenewal renewed,
        Func<LimitAt, string?>? limitMatch)
    {
        _kernelCounters = kernelCounters;
        _packetPath = packetPath.ToDictionary(w => (new TableKey(w.Family, w.Table), w.Set));
        _renewed = renewed;
        _limitMatch = limitMatch;
    }

    /// <summary>
    /// Plans the transition; <paramref name="touched"/> gets the tables whose rules got new kernel handles.
    /// <paramref name="packetPath"/>: the sets of kept tables the kernel's packet path writes, diffed from the
    /// transaction's own element changes (<see cref="PacketPathSet"/>).
    /// <paramref name="renewed"/>: what the transaction deleted and created anew (<see cref="KernelRenewal"/>), deleted
    /// and added again here whatever its content; a renewed table is recreated without carrying its counters.
    /// </summary>
    public static KernelBatch Plan(IReadOnlyDictionary<TableKey, PlacedTable> placed, IReadOnlyList<SourceTable> desired,
        Func<TableKey, KernelCounters> kernelCounters, out HashSet<TableKey> touched, IEnumerable<PacketPathSet>? packetPath = null,
        KernelRenewal? renewed = null, Func<LimitAt, string?>? limitMatch = null)
    {
        var p = new TransitionPlanner(kernelCounters, packetPath ?? [], renewed ?? KernelRenewal.None, limitMatch);
        touched = [];
        var want = new Dictionary<TableKey, SourceTable>();
        foreach (var t in desired)
        {
            var key = KeyOf(t);
            Validate(key, t);
            if (!want.TryAdd(key, t)) throw new ArgumentException($"table {key} is desired twice");
        }
        foreach (var (key, _) in placed)
            if (!want.ContainsKey(key))
                p.Add(NftMsgType.DelTable, key.Family, new Table { Family = key.Family, Name = key.Name }, $"delete table {key}");
        foreach (var t in desired)
        {
            var key = KeyOf(t);
            if (!placed.TryGetValue(key, out var old))
            {
                p.AddTable(key, t, null);
                touched.Add(key);
            }
            else if (old.Stale || p._renewed.Tables.Contains(key) || NeedsRecreate(old.Source, t))
            {
                // a renewed table is another table: its counters start from what the transaction gave them
                var counters = p._renewed.Tables.Contains(key) ? null : kernelCounters(key);
                p.Add(NftMsgType.DelTable, key.Family, new Table { Family = key.Family, Name = key.Name }, $"delete table {key} (recreated)");
                p.AddTable(key, t, counters);
                touched.Add(key);
            }
            else if (p.Diff(key, old.Source, old.KernelRuleHandles, t, null))
            {
                touched.Add(key);
            }
        }
        return p._batch;
    }

    public static TableKey KeyOf(SourceTable t) =>
        new(t.Table.Family, t.Table.Name ?? throw new ArgumentException("a desired table has no name"));

    static void Validate(TableKey key, SourceTable t)
    {
        var handles = new HashSet<ulong>();
        foreach (var c in t.Chains)
        {
            if (c.Chain.Name is null) throw new ArgumentException($"table {key}: a chain has no name");
            if (c.Chain.ChainFlags.HasFlag(NftChainFlags.Binding))
                throw new NotSupportedException($"table {key} chain {c.Chain.Name}: bound (anonymous) chains cannot be placed in the kernel yet");
            foreach (var r in c.Rules)
            {
                if (r.Handle is not { } h) throw new ArgumentException($"table {key} chain {c.Chain.Name}: a rule has no handle (the placement keys rules by handle)");
                if (!handles.Add(h)) throw new ArgumentException($"table {key}: rule handle {h} appears twice");
            }
        }
    }

    void Add(NftMsgType type, byte family, object record, string description, NlmFlags flags = NlmFlags.None, ulong? ruleHandle = null) =>
        _batch.Add(type, family, record, description, flags, ruleHandle);

    void AddTable(TableKey key, SourceTable t, KernelCounters? carried)
    {
        Add(NftMsgType.NewTable, key.Family, KernelForm.Table(t.Table), $"add table {key}", NlmFlags.Create);
        Diff(key, null, null, t, carried);
    }

    // ---------------------------------------------------------------- what "the same" means

    static bool NeedsRecreate(SourceTable old, SourceTable now)
    {
        if (!KernelForm.SameBytes(TableFingerprint(old.Table), TableFingerprint(now.Table))) return true;
        var oldChains = old.Chains.ToDictionary(c => c.Chain.Name!);
        foreach (var c in now.Chains)
            if (oldChains.TryGetValue(c.Chain.Name!, out var o) && !KernelForm.SameBytes(ChainFingerprint(o.Chain), ChainFingerprint(c.Chain)))
                return true;
        var oldSets = NamedSets(old);
        foreach (var s in NamedSets(now).Values)
            if (oldSets.TryGetValue(s.Set.Name!, out var o) && !KernelForm.SameBytes(SetFingerprint(o.Set), SetFingerprint(s.Set)))
                return true;
        var oldObjs = (old.Objects ?? []).ToDictionary(ObjectKey);
        foreach (var ob in now.Objects ?? [])
            if (oldObjs.TryGetValue(ObjectKey(ob), out var o) && !KernelForm.SameBytes(ObjectFingerprint(o), ObjectFingerprint(ob)))
                return true;
        var oldFts = (old.Flowtables ?? []).ToDictionary(f => f.Name!);
        foreach (var f in now.Flowtables ?? [])
            if (oldFts.TryGetValue(f.Name!, out var o) && !KernelForm.SameBytes(FlowtableFingerprint(o), FlowtableFingerprint(f)))
                return true;
        // kept rules must keep their relative order (nft cannot move a rule; a reused handle is another rule)
        var oldAnon = AnonymousSets(old);
        var nowAnon = AnonymousSets(now);
        var flipped = FlippedLimits(old, now);
        foreach (var c in now.Chains)
        {
            if (!oldChains.TryGetValue(c.Chain.Name!, out var o)) continue;
            var kept = KeptRules(o, oldAnon, c, nowAnon, flipped, out bool sameHandleOtherContent);
            if (sameHandleOtherContent) return true;
            var oldOrder = o.Rules.Where(r => kept.Contains(r.Handle!.Value)).Select(r => r.Handle!.Value);
            var newOrder = c.Rules.Where(r => kept.Contains(r.Handle!.Value)).Select(r => r.Handle!.Value);
            if (!oldOrder.SequenceEqual(newOrder)) return true;
        }
        return false;
    }

    /// <param name="flipped">
    /// limit objects one of the two tables holds and the other does not (<see cref="FlippedLimits"/>): a rule naming one is
    /// other content, the same caller's rule sent once naming the kernel's object and once running BPF's bucket instead
    /// </param>
    static HashSet<ulong> KeptRules(SourceChain old, IReadOnlyDictionary<string, SourceSet> oldAnon, SourceChain now,
        IReadOnlyDictionary<string, SourceSet> nowAnon, IReadOnlySet<string> flipped, out bool sameHandleOtherContent)
    {
        sameHandleOtherContent = false;
        var olds = old.Rules.ToDictionary(r => r.Handle!.Value);
        var kept = new HashSet<ulong>();
        foreach (var r in now.Rules)
        {
            if (!olds.TryGetValue(r.Handle!.Value, out var o)) continue;
            if (KernelForm.SameBytes(RuleFingerprint(o, oldAnon), RuleFingerprint(r, nowAnon))
                && (flipped.Count == 0 || !(r.Expressions ?? []).Any(e => NamedLimit(e) is { } n && flipped.Contains(n))))
                kept.Add(r.Handle.Value);
            else sameHandleOtherContent = true;
        }
        return kept;
    }

    /// <summary>
    /// The limit objects one of <paramref name="old"/> and <paramref name="now"/> holds and the other does not. A rule
    /// naming one in both is the placement's doing: its kernel copy runs BPF's bucket for a limit object the kernel's copy
    /// does not hold (<see cref="LimitMatches"/>), or no longer can (an object map of limits came, whose elements may name
    /// it); the table is made anew then, as for any rule whose kernel copy changes under the same handle.
    /// </summary>
    static HashSet<string> FlippedLimits(SourceTable? old, SourceTable now)
    {
        static IEnumerable<string> Limits(SourceTable? t) =>
            (t?.Objects ?? []).Where(o => o.ObjectType == NftObjectType.Limit && o.Name != null).Select(o => o.Name!);
        var flipped = Limits(old).ToHashSet(StringComparer.Ordinal);
        flipped.SymmetricExceptWith(Limits(now));
        return flipped;
    }

    static byte[] TableFingerprint(Table t) => KernelForm.Bytes(KernelForm.Table(t) with { Handle = t.Handle });
    static byte[] ChainFingerprint(Chain c) => KernelForm.Bytes(c with { Policy = null, Use = null, Counters = null, Id = null });
    static byte[] SetFingerprint(Set s) => KernelForm.Bytes(s with { Id = null, Count = null, Backend = null });
    static byte[] ObjectFingerprint(NftObject o) => KernelForm.Bytes(o with { Use = null, Data = o.Data is { } d ? Stateless(d) : null });
    static byte[] FlowtableFingerprint(Flowtable f) => KernelForm.Bytes(f with { Use = null });

    static Expression Stateless(Expression e) => e is QuotaExpr q
        ? q with { Consumed = null, Flags = q.Flags is { } f ? f & ~QuotaExpr.NFT_QUOTA_F_DEPLETED : null, Layout = null }
        : KernelForm.Stateless(e);

    static byte[] RuleFingerprint(Rule r, IReadOnlyDictionary<string, SourceSet> anonymous)
    {
        var bare = r with
        {
            Handle = null, Position = null, Id = null, PositionId = null, ChainId = null,
            Expressions = r.Expressions?.Select(Stateless).ToList(),
        };
        var w = new NetlinkWriter();
        NftMessage.EncodeAttributes(w, bare, WireFormat.Kernel);
        foreach (var name in SetReferences(r))
        {
            if (!anonymous.TryGetValue(name, out var s)) continue;
            NftMessage.EncodeAttributes(w, s.Set with { Name = null, Handle = null, Id = null, Count = null, Backend = null }, WireFormat.Kernel);
            foreach (var e in s.Elements) ElementBytes(w, e);
        }
        return w.ToArray();
    }

    static void ElementBytes(NetlinkWriter w, SetElement e) =>
        (e with { Expiration = null, Expressions = e.Expressions?.Select(Stateless).ToList(), Expr = e.Expr is { } x ? Stateless(x) : null })
            .Encode(w, NftaList.Elem, WireFormat.Kernel);

    /// <summary>
    /// The elements the diff of a kept set starts from: what was placed, or for a set the kernel's packet path writes,
    /// the desired ones as they were before the transaction (its additions taken out, as placed if they replace a
    /// placed element; its removals put back).
    /// </summary>
    static IEnumerable<SetElement> Held(PacketPathSet? w, SourceSet placed, SourceSet desired)
    {
        if (w == null) return placed.Elements;
        var added = w.Added.Select(KeyId).ToHashSet();
        var replaced = placed.Elements.Where(e => added.Contains(KeyId(e)));
        return desired.Elements.Where(e => !added.Contains(KeyId(e))).Concat(w.Removed).Concat(replaced);
    }

    static string KeyId(SetElement e) => Convert.ToHexString(ElementFingerprint(KernelForm.ElementKey(e)));

    /// <summary>
    /// <paramref name="elements"/> and the renewed ones not among them by key: a renewed element unchanged in content is
    /// deleted and added again all the same (nft_set_elem_init makes another element, with its statements anew).
    /// </summary>
    static List<SetElement> Renewing(List<SetElement> elements, IEnumerable<SetElement> renewed)
    {
        var keys = elements.Select(KeyId).ToHashSet();
        return [.. elements, .. renewed.Where(e => keys.Add(KeyId(e)))];
    }

    static byte[] ElementFingerprint(SetElement e)
    {
        var w = new NetlinkWriter(256);
        ElementBytes(w, e);
        return w.ToArray();
    }

    /// <summary>Names of the sets a rule's expressions refer to (lookup, dynset, object maps).</summary>
    static IEnumerable<string> SetReferences(Rule r)
    {
        foreach (var e in r.Expressions ?? [])
        {
            switch (e)
            {
                case LookupExpr l: yield return l.Set; break;
                case DynsetExpr d: yield return d.SetName; break;
                case ObjRefExpr { SetName: { } n }: yield return n; break;
            }
        }
    }

    static Dictionary<string, SourceSet> NamedSets(SourceTable t) =>
        t.Sets.Where(s => !s.Set.SetFlags.HasFlag(NftSetFlags.Anonymous)).ToDictionary(s => s.Set.Name ?? throw new ArgumentException($"table {KeyOf(t)}: a set has no name"));

    static Dictionary<string, SourceSet> AnonymousSets(SourceTable t) =>
        t.Sets.Where(s => s.Set.SetFlags.HasFlag(NftSetFlags.Anonymous)).ToDictionary(s => s.Set.Name ?? throw new ArgumentException($"table {KeyOf(t)}: a set has no name"));

    static (uint, string) ObjectKey(NftObject o) => (o.Type ?? 0, o.Name ?? throw new ArgumentException("an object has no name"));

    // ---------------------------------------------------------------- the messages

    /// <summary>Emits the messages from <paramref name="old"/> (null: an empty table) to <paramref name="now"/>; true if any rule was added.</summary>
    bool Diff(TableKey key, SourceTable? old, IReadOnlyDictionary<ulong, ulong>? kernelHandles, SourceTable now, KernelCounters? carried)
    {
        byte fam = key.Family;
        string table = key.Name;
        var oldChains = old?.Chains.ToDictionary(c => c.Chain.Name!) ?? [];
        var nowChains = now.Chains.ToDictionary(c => c.Chain.Name!);
        var oldSets = old is null ? [] : NamedSets(old);
        var nowSets = NamedSets(now);
        var oldAnon = old is null ? [] : AnonymousSets(old);
        var nowAnon = AnonymousSets(now);
        var oldObjs = (old?.Objects ?? []).ToDictionary(ObjectKey);
        var nowObjs = (now.Objects ?? []).ToDictionary(ObjectKey);
        // objects of this table the transaction deleted and added again: deleted and added here whatever their content
        var renewedObjs = _renewed.Objects.Where(o => o.Table == key).Select(o => (o.Type, o.Name)).ToHashSet();
        var oldFts = (old?.Flowtables ?? []).ToDictionary(f => f.Name!);
        var nowFts = (now.Flowtables ?? []).ToDictionary(f => f.Name!);

        var kept = new Dictionary<string, HashSet<ulong>>();
        foreach (var c in now.Chains)
            kept[c.Chain.Name!] = oldChains.TryGetValue(c.Chain.Name!, out var o) ? KeptRules(o, oldAnon, c, nowAnon, FlippedLimits(old, now), out _) : [];

        // 1. deletions: rules first (they hold the references), then elements, sets, objects, chains
        foreach (var o in old?.Chains ?? [])
        {
            var keep = kept.GetValueOrDefault(o.Chain.Name!) ?? [];
            foreach (var r in o.Rules)
            {
                if (keep.Contains(r.Handle!.Value)) continue;
                ulong kh = kernelHandles![r.Handle.Value];
                Add(NftMsgType.DelRule, fam, new Rule { Family = fam, Table = table, Chain = o.Chain.Name, Handle = kh },
                    $"delete rule {key} {o.Chain.Name} handle {r.Handle} (kernel handle {kh})", ruleHandle: r.Handle);
            }
        }
        foreach (var (name, s) in oldSets)
        {
            if (!nowSets.TryGetValue(name, out var n) || _renewed.Sets.Contains((key, name)))
            {
                Add(NftMsgType.DelSet, fam, new Set { Family = fam, Table = table, Name = name }, $"delete set {key} {name}");
                continue;
            }
            var have = n.Elements.Select(ElementFingerprint).Select(Convert.ToHexString).ToHashSet();
            var written = _packetPath.TryGetValue((key, name), out var w);
            var gone = Held(w, s, n).Where(e => !have.Contains(Convert.ToHexString(ElementFingerprint(e)))).Select(KernelForm.ElementKey).ToList();
            gone = Renewing(gone, _renewed.ElementsOf(key, name).Select(KernelForm.ElementKey));
            // an element that expired (or that the packet path deleted) may already be gone from the kernel when the
            // emulation drops it: DESTROYSETELEM (since 6.3) deletes it if present and is no error if not
            AddElements(written || n.Set.SetFlags.HasFlag(NftSetFlags.Timeout) ? NftMsgType.DestroySetElem : NftMsgType.DelSetElem,
                key, name, null, gone, $"delete elements from set {key} {name}", n.Set);
        }
        foreach (var (k, o) in oldObjs)
            if (!nowObjs.ContainsKey(k) || renewedObjs.Contains(k))
                Add(NftMsgType.DelObj, fam, new NftObject { Family = fam, Table = table, Name = k.Item2, Type = k.Item1 }, $"delete {NftObject.KindOf(k.Item1)} {key} {k.Item2}");
        foreach (var (name, _) in oldFts)
            if (!nowFts.ContainsKey(name))
                Add(NftMsgType.DelFlowtable, fam, new Flowtable { Family = fam, Table = table, Name = name }, $"delete flowtable {key} {name}");
        foreach (var o in old?.Chains ?? [])
            if (!nowChains.ContainsKey(o.Chain.Name!))
                Add(NftMsgType.DelChain, fam, new Chain { Family = fam, Table = table, Name = o.Chain.Name }, $"delete chain {key} {o.Chain.Name}");

        // 2. additions: chains (jump targets, vmap data), objects (object maps), sets and elements, then rules
        foreach (var c in now.Chains)
        {
            if (!oldChains.TryGetValue(c.Chain.Name!, out var o))
                Add(NftMsgType.NewChain, fam, KernelForm.Chain(c.Chain) with { Family = fam, Table = table }, $"add chain {key} {c.Chain.Name}", NlmFlags.Create);
            else if (o.Chain.Policy != c.Chain.Policy)
                Add(NftMsgType.NewChain, fam, KernelForm.Chain(c.Chain) with { Family = fam, Table = table }, $"update policy of chain {key} {c.Chain.Name}");
        }
        foreach (var (k, ob) in nowObjs)
        {
            var renewed = renewedObjs.Contains(k);
            if (oldObjs.ContainsKey(k) && !renewed) continue;
            // a renewed object is another object: its state starts from what the transaction gave it
            var obj = !renewed && carried?.Object(fam, table, k.Item1, k.Item2) is { Data: { } state } ? ob with { Data = state } : ob;
            Add(NftMsgType.NewObj, fam, KernelForm.Object(obj) with { Family = fam, Table = table }, $"add {NftObject.KindOf(k.Item1)} {key} {k.Item2}", NlmFlags.Create);
        }
        foreach (var (name, f) in nowFts)
            if (!oldFts.ContainsKey(name))
                Add(NftMsgType.NewFlowtable, fam, KernelForm.Flowtable(f) with { Family = fam, Table = table }, $"add flowtable {key} {name}", NlmFlags.Create);
        foreach (var (name, s) in nowSets)
        {
            if (!oldSets.TryGetValue(name, out var o) || _renewed.Sets.Contains((key, name)))
            {
                Add(NftMsgType.NewSet, fam, KernelForm.Set(s.Set, _nextId++, anonymous: false) with { Family = fam, Table = table }, $"add set {key} {name}", NlmFlags.Create);
                // a new set's elements keep the time they have left (the caller gives Expiration as that; KernelForm.Element
                // drops it), those another packet path held too
                var elements = (_packetPath.GetValueOrDefault((key, name))?.Live ?? s.Elements)
                    .Select(e => KernelForm.Element(e) with { Expiration = e.Expiration });
                AddElements(NftMsgType.NewSetElem, key, name, null, elements.ToList(), $"add elements to set {key} {name}", s.Set);
                continue;
            }
            var had = Held(_packetPath.GetValueOrDefault((key, name)), o, s).Select(ElementFingerprint).Select(Convert.ToHexString).ToHashSet();
            var added = s.Elements.Where(e => !had.Contains(Convert.ToHexString(ElementFingerprint(e)))).Select(KernelForm.Element).ToList();
            var renewedKeys = _renewed.ElementsOf(key, name).Select(KeyId).ToHashSet();
            added = Renewing(added, s.Elements.Where(e => renewedKeys.Contains(KeyId(e))).Select(KernelForm.Element));
            AddElements(NftMsgType.NewSetElem, key, name, null, added, $"add elements to set {key} {name}", s.Set);
        }

        bool rulesAdded = false;
        foreach (var c in now.Chains)
        {
            string chain = c.Chain.Name!;
            var keep = kept[chain];
            var rules = c.Rules;
            uint? prevNewId = null;
            for (int i = 0; i < rules.Count; i++)
            {
                var r = rules[i];
                ulong emu = r.Handle!.Value;
                if (keep.Contains(emu)) { prevNewId = null; continue; }
                rulesAdded = true;
                // anonymous sets travel with their rule, as nft sends them: NEWSET "__set%d" (a meter's by its name) + elements, bound by id
                var anonIds = new Dictionary<string, (string Name, uint Id)>();
                foreach (var setName in SetReferences(r).Distinct())
                {
                    if (!setName.StartsWith("__", StringComparison.Ordinal) && nowSets.ContainsKey(setName)) continue;
                    if (!nowAnon.TryGetValue(setName, out var anon))
                    {
                        if (nowSets.ContainsKey(setName)) continue;
                        throw new ArgumentException($"table {key} chain {chain} rule handle {emu}: refers to set {setName}, which the table does not hold");
                    }
                    uint id = _nextId++;
                    var sent = KernelForm.AnonymousName(anon.Set);
                    anonIds[setName] = (sent, id);
                    Add(NftMsgType.NewSet, fam, KernelForm.Set(anon.Set, id, anonymous: true) with { Family = fam, Table = table },
                        $"add anonymous set {setName} of rule {key} {chain} handle {emu}", NlmFlags.Create, emu);
                    // a meter the kernel takes over from BPF's packet path starts with the elements that one holds (Live), with the
                    // time they have left, as a named set does; before, it started empty and `list meter` lost them
                    var live = _packetPath.GetValueOrDefault((key, setName))?.Live;
                    var elements = live?.Select(e => KernelForm.Element(e) with { Expiration = e.Expiration }) ?? anon.Elements.Select(KernelForm.Element);
                    AddElements(NftMsgType.NewSetElem, key, sent, id, elements.ToList(),
                        $"add elements to anonymous set {setName} of rule {key} {chain} handle {emu}", anon.Set, emu);
                }
                var withCounters = carried is null ? r : CarryCounters(r, carried, key, chain);
                uint ruleId = _nextId++;
                var rule = KernelForm.Rule(withCounters, n => anonIds.TryGetValue(n, out var a) ? a : null, LimitMatches(key, chain, r)) with
                {
                    Family = fam, Table = table, Chain = chain, Id = ruleId,
                };
                var flags = NlmFlags.Create | NlmFlags.Append;
                if (prevNewId is { } pid) rule = rule with { PositionId = pid };
                else if (i > 0) rule = rule with { Position = kernelHandles![rules[i - 1].Handle!.Value] }; // after the kept rule before it
                else if (rules.Skip(1).FirstOrDefault(x => keep.Contains(x.Handle!.Value)) is { } next)
                {
                    rule = rule with { Position = kernelHandles![next.Handle!.Value] }; // first of the chain: before the first kept rule
                    flags = NlmFlags.Create;
                }
                Add(NftMsgType.NewRule, fam, rule, $"add rule {key} {chain} handle {emu}", flags, emu);
                prevNewId = ruleId;
            }
        }
        return rulesAdded;
    }

    /// <summary>
    /// Per expression index of <paramref name="r"/>, the xt_bpf match the kernel copy runs instead of a `limit`, or of an
    /// objref naming a limit object, whose bucket BPF holds.
    /// </summary>
    Func<int, Expression?>? LimitMatches(TableKey key, string chain, Rule r)
    {
        if (_limitMatch is not { } of || !XtBpfMatch.Runs(key.Family) || r.Expressions is not { } x) return null;
        return i => (x[i] is LimitExpr || NamedLimit(x[i]) != null) && of(new LimitAt(key.Family, key.Name, chain, r.Handle!.Value, i)) is { } path
            ? XtBpfMatch.Pinned(path) : null;
    }

    /// <summary>The limit object <paramref name="e"/> names (not through a map), or null.</summary>
    static string? NamedLimit(Expression e) => e is ObjRefExpr { IsMap: false, ImmName: { } n } o && o.ImmType == (uint)NftObjectType.Limit ? n : null;

    static Rule CarryCounters(Rule r, KernelCounters carried, TableKey key, string chain)
    {
        if (r.Expressions is not { } exprs) return r;
        var list = exprs.ToList();
        bool changed = false;
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not CounterExpr) continue;
            var c = carried.Rule(key.Family, key.Name, r.Handle!.Value, i);
            if (c is null) continue;
            list[i] = new CounterExpr(c.Bytes, c.Packets);
            changed = true;
        }
        return changed ? r with { Expressions = list } : r;
    }

    void AddElements(NftMsgType type, TableKey key, string set, uint? setId, IReadOnlyList<SetElement> elements, string description, Set definition,
        ulong? ruleHandle = null)
    {
        if (elements.Count == 0) return;
        // interval sets (rbtree) check each new boundary against its neighbours: send them in key order,
        // an interval's end before the next start at the same key, as nft does (dumps list them backwards)
        if (definition.SetFlags.HasFlag(NftSetFlags.Interval))
            elements = elements.OrderBy(e => e.Key is ValueData v ? v.Value : null, KeyOrder.Instance)
                .ThenBy(e => e.ElemFlags.HasFlag(NftSetElemFlags.IntervalEnd) ? 0 : 1).ToList();
        var chunk = new List<SetElement>();
        int bytes = 0;
        void Flush()
        {
            if (chunk.Count == 0) return;
            Add(type, key.Family, new SetElementList { Family = key.Family, Table = key.Name, Set = set, SetId = setId, Elements = chunk.ToList() },
                description, type == NftMsgType.NewSetElem ? NlmFlags.Create : NlmFlags.None, ruleHandle);
            chunk.Clear();
            bytes = 0;
        }
        foreach (var e in elements)
        {
            int size = ElementFingerprint(e).Length;
            if (bytes + size > ElementChunkBytes) Flush();
            chunk.Add(e);
            bytes += size;
        }
        Flush();
    }

    /// <summary>Keys compared as the kernel's rbtree does (memcmp); elements without a key (catch-all) last.</summary>
    sealed class KeyOrder : IComparer<byte[]?>
    {
        public static readonly KeyOrder Instance = new();
        public int Compare(byte[]? a, byte[]? b) =>
            a is null ? (b is null ? 0 : 1) : b is null ? -1 : a.AsSpan().SequenceCompareTo(b);
    }
}
