using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using NftVerdict = Nft.Bytecode.Data.Verdict;

namespace Nft.Lifter;

/// <summary>One table being lifted: its names in the IR, the sets its rules use, the counter slots.</summary>
internal sealed class TableContext
{
    /// <summary>NFT_DATA_VERDICT: the data type of verdict maps.</summary>
    public const uint DataTypeVerdict = 0xffffff00;

    readonly Dictionary<string, SetUse> _sets = new(StringComparer.Ordinal);
    readonly List<string> _setOrder = [];
    readonly List<string> _reached = [];

    public TableContext(SourceTable source, CounterSlots counters)
    {
        Source = source;
        Counters = counters;
    }

    public SourceTable Source { get; }
    public CounterSlots Counters { get; }
    public byte Family => Source.Family;
    public string Name => Source.Name;
    string Prefix => $"{FamilyNames.Of(Family)} {Name}/";

    public string ChainName(string chain) => Prefix + chain;
    public string SetName(string set) => Prefix + set;

    /// <summary>IR name of the regular chain a jump/goto names.</summary>
    public string ChainTarget(NftVerdict v, RuleContext rule, int index)
    {
        var name = v.Chain ?? throw rule.Refuse(index, $"{v} names no chain");
        var target = Source.FindChain(name) ?? throw rule.Refuse(index, $"{v}: no such chain");
        if (target.IsBase) throw rule.Refuse(index, $"{v}: cannot jump to a base chain");
        return Reach(name);
    }

    /// <summary>IR name of a regular chain a verdict sends packets to; remembered so the chain is lifted with its caller.</summary>
    public string Reach(string chain)
    {
        if (!_reached.Contains(chain)) _reached.Add(chain);
        return ChainName(chain);
    }

    /// <summary>The first ct load lifted in this context (chain, rule handle, expression index), or null.</summary>
    public (string Chain, ulong Handle, int Index)? FirstCt { get; private set; }

    public void NoteCt(RuleContext rule, int index) => FirstCt ??= (rule.Chain, rule.Handle, index);

    /// <summary>The first `meta mark set` lifted in this context, or null: only a tc program can write skb->mark.</summary>
    public (string Chain, ulong Handle, int Index)? FirstMarkSet { get; private set; }

    public void NoteMarkSet(RuleContext rule, int index) => FirstMarkSet ??= (rule.Chain, rule.Handle, index);

    /// <summary>The regular chains jumped to so far, in the order first reached.</summary>
    public IReadOnlyList<string> Reached => _reached;

    /// <summary>Each set a lifted rule used, by nft name, with how it is read.</summary>
    public IReadOnlyDictionary<string, SetUse> Uses => _sets;

    /// <summary>
    /// Records that a rule looks the set up with this key; returns its IR name. Every use of one set
    /// must convert its elements the same way (same widths, masks, byte order).
    /// </summary>
    public string UseSet(SourceSet set, MatchKey key, List<Operand> ops, SetUseKind kind, RuleContext rule, int index)
    {
        bool vmap = kind == SetUseKind.Vmap;
        var f = set.Set.SetFlags;
        if (HasTimeouts(set))
        {
            // expiry is compared with the kernel's jiffies: the element deadlines must be on that clock, in whole ticks
            if (!Bpfilter.Backend.Libbpf.KernelClock.Available)
                throw rule.Refuse(index, $"set '{set.Name}' has timeouts, which bpfilter-nft runs only where it reads the kernel's jiffies (bpf_jiffies64, CONFIG_HZ dividing 1000)");
            if ((f & NftSetFlags.Interval) != 0)
                throw rule.Refuse(index, $"interval set '{set.Name}' has timeouts, which bpfilter-nft does not support");
            // the object dispatch reads no expiry: an expired element would still name its object
            if (kind == SetUseKind.Objects)
                throw rule.Refuse(index, $"object map '{set.Name}' has timeouts, which bpfilter-nft does not support");
        }
        if (ElementStatements.Refusal(set, kind) is { } perElement) throw rule.Refuse(index, perElement);
        if (((f & NftSetFlags.Object) != 0) != (kind == SetUseKind.Objects))
            throw rule.Refuse(index, kind == SetUseKind.Objects ? $"'{set.Name}' is not an object map"
                : $"object map '{set.Name}' is read only by `counter|quota|limit name ... map`");
        bool isMap = (f & NftSetFlags.Map) != 0 && kind != SetUseKind.Objects;
        if (vmap && (!isMap || set.Set.DataType != DataTypeVerdict))
            throw rule.Refuse(index, $"'{set.Name}' is not a verdict map");
        // nft_lookup without a data register, or a dynset, on a map of values reads or writes it as a set of keys
        // (its data is held only where the packet path writes it, for the listing: SetLifter)
        if (!vmap && isMap && set.Set.DataType == DataTypeVerdict)
            throw rule.Refuse(index, $"membership test on verdict map '{set.Name}' is not supported by bpfilter-nft");
        var sig = kind switch { SetUseKind.Vmap => "vmap|", SetUseKind.Objects => "objmap|", _ => "set|" } + string.Join("|", ops.Select(o => o.Signature));
        if (_sets.TryGetValue(set.Name, out var use))
        {
            if (use.Signature != sig)
                throw rule.Refuse(index, $"set '{set.Name}' is used with keys of different layouts ('{use.Key}' and '{key}')");
            return SetName(set.Name);
        }
        _sets[set.Name] = new SetUse(set, key, ops, vmap, sig, rule.Chain, rule.Handle, index) { Objects = kind == SetUseKind.Objects };
        _setOrder.Add(set.Name);
        return SetName(set.Name);
    }

    readonly Dictionary<string, List<ValueList<Statement>>> _written = [];

    /// <summary>
    /// Records that a rule changes the set from the packet path (dynset) and, for one that makes elements (add, update),
    /// the statements it gives them (nft_dynset_new clones the making rule's own list): each list not empty, once, in the
    /// order rules first give it. Returns how many lists the set's elements may now carry.
    /// </summary>
    public int NoteWritten(string set, ValueList<Statement> statements)
    {
        if (!_written.TryGetValue(set, out var lists)) _written[set] = lists = [];
        if (!statements.IsEmpty && !lists.Contains(statements)) lists.Add(statements);
        return lists.Count;
    }

    /// <summary>Whether a lifted rule changes the set from the packet path.</summary>
    public bool IsWritten(string set) => _written.ContainsKey(set);

    /// <summary>The statements the first rule giving any gives the set's new elements (empty: none, or not written).</summary>
    public ValueList<Statement> PacketStatements(string set) => _written.TryGetValue(set, out var s) && s.Count > 0 ? s[0] : default;

    /// <summary>Every list the rules give the set's new elements, when more than one (see <see cref="Set.RuleStatementLists"/>).</summary>
    public ValueList<ValueList<Statement>> RuleStatementLists(string set) =>
        _written.TryGetValue(set, out var s) && s.Count > 1 ? s.ToValueList() : default;

    /// <summary>
    /// <paramref name="built"/> built again when a rule lifted after it (in a chain reached through a map's elements)
    /// wrote the set or gave its elements another list; else itself.
    /// </summary>
    public Set Rebuilt(Set built)
    {
        var name = built.Name[Prefix.Length..];
        return built.PacketWritten == IsWritten(name) && built.PacketStatements == PacketStatements(name)
            && built.RuleStatementLists == RuleStatementLists(name) ? built : SetLifter.Build(this, _sets[name]);
    }

    /// <summary>nft's `flags timeout` or a default timeout: elements may expire.</summary>
    public static bool HasTimeouts(SourceSet set) => (set.Set.SetFlags & NftSetFlags.Timeout) != 0 || set.Set.Timeout is not (null or 0);

    /// <summary>The IR sets of every set a lifted rule used, with their elements.</summary>
    public IEnumerable<Set> BuildSets() => _setOrder.Select(n => SetLifter.Build(this, _sets[n]));

    /// <summary>Set uses recorded since <paramref name="mark"/> (for lifting a single rule).</summary>
    public int SetMark => _setOrder.Count;
    public IEnumerable<Set> BuildSetsSince(int mark) => _setOrder.Skip(mark).Select(n => SetLifter.Build(this, _sets[n]));
}

/// <summary>How a rule reads a set: membership, a verdict map, or an object map naming stateful objects.</summary>
internal enum SetUseKind { Set, Vmap, Objects }

/// <summary>How the first rule that used a set reads it; elements are converted with these operands.</summary>
internal sealed record SetUse(SourceSet Set, MatchKey Key, List<Operand> Ops, bool Vmap, string Signature,
    string Chain, ulong Handle, int Index)
{
    /// <summary>An object map: each element carries the statement of the object it names.</summary>
    public bool Objects { get; init; }
}
