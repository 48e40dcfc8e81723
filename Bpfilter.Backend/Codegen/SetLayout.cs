using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// How a set becomes a BPF map: a hash map keyed by the concatenated field bytes when every element
/// is exact, otherwise an LPM trie keyed by (u32 prefix length, bytes) where ranges are split into
/// prefixes; a prefix or range in a field before the last of a concatenation is expanded into its
/// exact values (bounded by <see cref="MaxKeysPerElement"/>). Values are a u32
/// (1 for sets; a verdict code for vmaps, see <see cref="VerdictCodes"/>), followed, when elements
/// carry statements, by a u32 statement code (the 1-based index of the element's statements, slots aside, in
/// <see cref="StatementShapes"/>; 0: none); in a set with timeouts
/// the u64 at <see cref="ExpiresOffset"/> is the element's expiry in jiffies (0: never), and in one the packet
/// path writes the u64 at <see cref="TimeoutOffset"/> the timeout in jiffies it gave the element; then, with
/// statements, one u32 state slot per statement at <see cref="SlotsOffset"/> (a counter's slot in the counter
/// map, a quota's or limit's in the shared maps). An object map's value
/// is the 1-based index of its element's object in <see cref="ObjectCodes"/>.
/// </summary>
internal sealed class SetLayout
{
    public const int MinEntries = 256;

    public SetLayout(Ir.Set set, IReadOnlyList<Verdict> verdictCodes, Func<ulong, int?>? counterSlot = null,
        IReadOnlyList<Statement>? objectCodes = null)
    {
        _counterSlot = counterSlot ?? (_ => null);
        ObjectCodes = objectCodes ?? [];
        if (set.Data is SetData.Object != (objectCodes != null))
            throw new CodegenException($"set '{set.Name}': an object map is read only through its objects");
        HasElementStatements = set.Data is not SetData.Object && set.Elements.Any(e => !e.Statements.IsEmpty);
        StatementShapes = HasElementStatements
            ? set.Elements.Where(e => !e.Statements.IsEmpty).Select(e => ShapeOf(e.Statements)).Distinct().ToList()
            : [];
        if (StatementShapes.Any(x => x.Count > MaxElementStatements))
            throw new CodegenException($"set '{set.Name}': an element has more than the {MaxElementStatements} statements nf_tables holds");
        Set = set;
        IsLpm = set.HasIntervals;
        DataBytes = set.Key.Bytes;
        if (DataBytes == 0 || DataBytes + (IsLpm ? 4 : 0) > RuntimeContext.KeySize)
            throw new CodegenException($"set '{set.Name}': a {DataBytes}-byte key is not supported");
        VerdictCodes = verdictCodes;
        if (set.PacketWritten && (IsLpm || set.IsMap && set.Data is not SetData.Bytes))
            throw new CodegenException($"set '{set.Name}': only a plain set or a map of values with exact keys can be written from the packet path");
        if (set.Data is SetData.Bytes b && (!set.PacketWritten || b.Bits % 8 != 0 || b.Bits == 0 || HasElementStatements))
            throw new CodegenException($"map '{set.Name}': the BPF backend holds the data of a map only when the packet path writes it");
        if (set.PacketWritten && ValueSize > RuntimeContext.ScratchSize)
            throw new CodegenException($"set '{set.Name}': a {ValueSize}-byte element value does not fit the program's scratch buffer");
        if (set.ElementLists.Count > 0 && (!set.PacketWritten || HasElementStatements))
            throw new CodegenException($"set '{set.Name}': statements of packet-path elements need a packet-written set without element slots");
        if (set.ElementLists.Count > 0 && ValueSize > RuntimeContext.ScratchSize)
            throw new CodegenException($"set '{set.Name}': a {ValueSize}-byte element value does not fit the program's scratch buffer");
        if (!set.PacketStatementLists.IsEmpty && (set.PacketStatementLists.Any(l => l.IsEmpty)
            || set.PacketStatementLists.Distinct().Count() != set.PacketStatementLists.Count || !set.PacketStatements.IsEmpty && set.PacketTag < 0))
            throw new CodegenException($"set '{set.Name}': its element statement lists must be distinct, not empty, and hold the list new elements get");
        if (!set.RuleStatementLists.IsEmpty && (set.RuleStatementLists.Any(l => l.IsEmpty) || set.RuleStatementLists.Distinct().Count() != set.RuleStatementLists.Count
            || set.RuleStatementLists[0] != set.PacketStatements || set.RuleStatementLists.Any(l => set.TagOf(l) < 0)))
            throw new CodegenException($"set '{set.Name}': the statement lists its rules give must be distinct, not empty, the first its PacketStatements, and each an element list");
        // several lists: an element's bucket stamps follow from one stamp only for lists of at most 2 statements (ProgramCompiler.EmitDeleteBuckets)
        if (set.ElementLists.Count > 1 && set.ElementLists.Any(l => l.Count > MaxElementStatements))
            throw new CodegenException($"set '{set.Name}': an element statement list has more than the {MaxElementStatements} statements nf_tables holds");
        if (set.ElementLists.Count > MaxTags)
            throw new CodegenException($"set '{set.Name}': elements carry more than the {MaxTags} statement lists the BPF backend dispatches on");
        if (HasPacketLimits && BucketKeySize > RuntimeContext.KeySize)
            throw new CodegenException($"set '{set.Name}': a {DataBytes}-byte key leaves no room for the born stamp of its elements' limit buckets");
    }

    private readonly Func<ulong, int?> _counterSlot;

    /// <summary>A copy for <paramref name="set"/> (the same set with other elements) and other counter slots, keeping the statement codes and verdict codes the program was compiled with.</summary>
    private SetLayout(SetLayout of, Ir.Set set, Func<ulong, int?> counterSlot)
    {
        _counterSlot = counterSlot;
        ObjectCodes = of.ObjectCodes;
        HasElementStatements = of.HasElementStatements;
        StatementShapes = of.StatementShapes;
        Set = set;
        IsLpm = of.IsLpm;
        DataBytes = of.DataBytes;
        VerdictCodes = of.VerdictCodes;
    }

    /// <summary>
    /// This layout for the same set with other elements and counter slots (a grouped run edited in place): encodes
    /// exactly as the running program reads, and refuses (CodegenException) what it was not compiled for.
    /// </summary>
    public SetLayout WithElements(Ir.Set set, Func<ulong, int?> counterSlot) =>
        set with { Elements = Set.Elements } == Set ? new SetLayout(this, set, counterSlot)
            : throw new CodegenException($"set '{Set.Name}': not the set this layout encodes");

    public Ir.Set Set { get; }
    /// <summary>True when elements carry statements: the value then holds a statement code after the code, and slots.</summary>
    public bool HasElementStatements { get; }
    /// <summary>
    /// The distinct statement lists of the elements with their state slots zeroed (what the program compiles:
    /// a quota's bytes, a limit's rate), in element order; an element's statement code is its 1-based index.
    /// </summary>
    public IReadOnlyList<ValueList<Statement>> StatementShapes { get; }
    /// <summary>nf_tables' NFT_SET_EXPR_MAX: the most statements an element carries.</summary>
    public const int MaxElementStatements = 2;
    /// <summary>Where the u32 state slots of an element's statements sit (after the code, expiry and timeout).</summary>
    public int SlotsOffset => HasElementTimeouts ? TimeoutOffset + 8 : HasTimeouts ? ExpiresOffset + 8 : 8;
    /// <summary>True when elements may expire: the value then holds the expiry at <see cref="ExpiresOffset"/>.</summary>
    public bool HasTimeouts => Set.Timeouts;
    /// <summary>Where the u64 expiry sits in the value (8-aligned, after the code and the counter slot).</summary>
    public const int ExpiresOffset = 8;
    /// <summary>
    /// True when the packet path adds elements that may expire: the value then also holds the element's own
    /// timeout at <see cref="TimeoutOffset"/>, which nft lists (`timeout 30s expires 59s`: `update` renews the
    /// expiry to the rule's or set's timeout and keeps the element's timeout, as the kernel does).
    /// </summary>
    public bool HasElementTimeouts => Set.PacketWritten && HasTimeouts;
    /// <summary>Where the u64 element timeout in jiffies sits (0: none written by the packet path).</summary>
    public const int TimeoutOffset = 16;
    public int ValueSize => MapDataBytes > 0 ? MapDataOffset + MapDataBytes : ValueSizeWithoutData;

    int ValueSizeWithoutData => HasElementStatements ? SlotsOffset + 4 * MaxElementStatements
        : HasPacketStatements ? Enumerable.Range(0, Set.ElementLists.Count).Max(t => PacketStateOffset(t, Set.ElementLists[t].Count))
        : HasElementTimeouts ? TimeoutOffset + 8 : HasTimeouts ? ExpiresOffset + 8 : 4;

    /// <summary>The bytes of a map's data the value holds (a map of values the packet path writes), else 0.</summary>
    public int MapDataBytes => Set.Data is SetData.Bytes b ? b.Bits / 8 : 0;
    /// <summary>
    /// Where a map's data sits in the value, as nft's register bytes: after everything else, 4-aligned, and no
    /// nearer the start than its own length (a packet field read into the scratch buffer's start, where the value
    /// is built, is then copied to its place without overlap).
    /// </summary>
    public int MapDataOffset => Math.Max((ValueSizeWithoutData + 3) & ~3, (MapDataBytes + 3) & ~3);
    /// <summary>
    /// True when elements the packet path adds may carry statements (<see cref="Ir.Set.ElementLists"/>): each such
    /// element's value then holds their state after the code, expiry and timeout, 8-aligned, in statement order:
    /// a counter's packets and bytes (two u64), a quota's bytes consumed (u64), a limit's born stamp (u64); the
    /// value is as long as the longest list needs. The element's tag (its list's index) is the code word's bits
    /// 8 and up (see <see cref="TagShift"/>).
    /// </summary>
    public bool HasPacketStatements => Set.ElementLists.Count > 0;

    /// <summary>
    /// Bit 30 of the code (the word at value offset 0) of a packet-written set's element: claimed by a packet's
    /// `delete @s`, which takes it from the other copy, then from the copy packets read (see ProgramCompiler.ElementDelete.cs).
    /// </summary>
    public const int DeleteClaim = 1 << 30;

    /// <summary>The code word at value offset 4 holds the element's tag from this bit on (bits 0 and 1: see ProgramCompiler's ElementStatementCode).</summary>
    public const int TagShift = 8;

    /// <summary>The most statement lists one set's elements carry: every dynset and lookup that finds an element dispatches on its tag.</summary>
    public const int MaxTags = Ir.Set.MaxElementLists;

    /// <summary>The statement list of elements with tag <paramref name="tag"/>.</summary>
    public ValueList<Statement> ElementList(int tag) => Set.ElementLists[tag];

    /// <summary>Where the state of statement <paramref name="index"/> of list <paramref name="tag"/> sits in the value (index = count: the list's end).</summary>
    public int PacketStateOffset(int tag, int index)
    {
        var offset = HasElementTimeouts ? TimeoutOffset + 8 : HasTimeouts ? ExpiresOffset + 8 : 8;
        for (var i = 0; i < index; i++) offset += PacketStateSize(Set.ElementLists[tag][i]);
        return offset;
    }

    static int PacketStateSize(Statement s) => s switch
    {
        CounterStatement => 16,
        QuotaStatement => 8,
        // the limit's born stamp: its bucket is the bucket map's entry (element key, born), see ElementBuckets
        LimitStatement => 8,
        _ => throw new CodegenException($"statement '{s}' of elements the packet path adds is not supported by the BPF backend"),
    };

    /// <summary>True when some statement of packet-path elements is a limit: the set then has a bucket map (<see cref="Loader.ElementBuckets"/>).</summary>
    public bool HasPacketLimits => Set.ElementLists.Any(l => l.Any(s => s is LimitStatement));

    /// <summary>Per tag, the value offsets of its list's limits' born stamps, in statement order.</summary>
    // worked out once: the emitter, the bucket spec and its size each read it, per limit and per tag
    public IReadOnlyList<IReadOnlyList<int>> BornOffsets => _bornOffsets ??= Enumerable.Range(0, Set.ElementLists.Count)
        .Select(t => (IReadOnlyList<int>)Enumerable.Range(0, Set.ElementLists[t].Count)
            .Where(i => Set.ElementLists[t][i] is LimitStatement).Select(i => PacketStateOffset(t, i)).ToList()).ToList();
    IReadOnlyList<IReadOnlyList<int>>? _bornOffsets;

    /// <summary>A bucket's key: the element's key, zero-padded to 8 bytes (the stamp is stored 8-aligned on the stack), then the u64 born stamp.</summary>
    public int BucketKeySize => ((KeySize + 7) & ~7) + 8;

    /// <summary>
    /// Buckets the bucket map holds: the live elements' (at most the set's size, one per limit), those of elements a
    /// control-plane batch deleted until the sweep after it (at most as many again), and slack for the few a packet that
    /// found an element just before another CPU deleted it makes again until the next sweep.
    /// </summary>
    public int BucketMaxEntries => BucketEntries(BornOffsets.Max(o => o.Count), Set.Size ?? 0);

    /// <summary>The buckets a set of <paramref name="size"/> elements needs when a list carries at most <paramref name="limits"/> limits (see <see cref="BucketMaxEntries"/>).</summary>
    public static int BucketEntries(int limits, int size) => 2 * limits * size + Loader.ElementBuckets.Slack;

    public bool IsLpm { get; }
    public int DataBytes { get; }
    /// <summary>Bytes before the data in the map key (the LPM prefix length).</summary>
    public int DataOffset => IsLpm ? 4 : 0;
    public int KeySize => DataOffset + DataBytes;
    public IReadOnlyList<Verdict> VerdictCodes { get; }
    /// <summary>An object map's objects, in the order the program dispatches on (empty for other sets).</summary>
    public IReadOnlyList<Statement> ObjectCodes { get; }
    public BpfMapType MapType => IsLpm ? BpfMapType.LpmTrie : BpfMapType.Hash;
    /// <summary>
    /// A set the packet path writes holds its nft size exactly (the map refuses the element past it with
    /// E2BIG, where nft_dynset breaks); others leave room for the control plane's changes.
    /// </summary>
    public int MaxEntries => MaxEntriesFor(Entries().Count);

    /// <summary>The map size for <paramref name="entries"/> map entries (what <see cref="Entries"/> gives), so they are counted once.</summary>
    public int MaxEntriesFor(int entries) => Set.PacketWritten
        ? Set.Size ?? throw new CodegenException($"set '{Set.Name}': written from the packet path without a size")
        : Math.Max(MinEntries, 2 * entries);

    /// <summary>Verdict code of an element (1-based index into VerdictCodes), object code (into ObjectCodes), 1 for plain sets.</summary>
    public uint CodeOf(SetElement e)
    {
        if (Set.Data is SetData.Object)
        {
            if (e.Statements.Count != 1) throw new CodegenException($"object map '{Set.Name}': an element names one object");
            for (var i = 0; i < ObjectCodes.Count; i++)
                if (ObjectCodes[i] == e.Statements[0]) return (uint)(i + 1);
            throw new CodegenException($"object map '{Set.Name}': object '{e.Statements[0]}' is not compiled into the program (needs a reload)");
        }
        if (!Set.IsMap || Set.Data is not SetData.Verdict) return 1;
        var v = e.Verdict ?? throw new CodegenException($"vmap '{Set.Name}': element without a verdict");
        for (var i = 0; i < VerdictCodes.Count; i++)
            if (VerdictCodes[i] == v) return (uint)(i + 1);
        throw new CodegenException($"vmap '{Set.Name}': verdict {v} is not compiled into the program (needs a reload)");
    }

    /// <summary>The map entries of every element, in element order.</summary>
    public List<(byte[] Key, byte[] Value)> Entries()
    {
        var entries = new List<(byte[] Key, byte[] Value)>(Set.Elements.Count);
        foreach (var e in Set.Elements) AddEntriesOf(e, entries);
        return entries;
    }

    /// <summary>The map entries of one element (a range may need several prefixes).</summary>
    public List<(byte[] Key, byte[] Value)> EntriesOf(SetElement e)
    {
        var entries = new List<(byte[] Key, byte[] Value)>(1);
        AddEntriesOf(e, entries);
        return entries;
    }

    /// <summary>
    /// The value of an element that has nothing but its code (no statements, data or expiry), one array per code:
    /// the entries of a set of a million addresses share one. Entry values are only read (map writes copy them).
    /// </summary>
    byte[]?[]? _codeOnly;

    byte[] CodeOnlyValue(uint code)
    {
        _codeOnly ??= new byte[]?[Math.Max(VerdictCodes.Count, ObjectCodes.Count) + 2];
        if (code >= _codeOnly.Length) return NewValue(code);
        return _codeOnly[code] ??= NewValue(code);
    }

    byte[] NewValue(uint code)
    {
        var value = new byte[ValueSize];
        BinaryPrimitives.WriteUInt32LittleEndian(value, code);
        return value;
    }

    void AddEntriesOf(SetElement e, List<(byte[] Key, byte[] Value)> entries)
    {
        bool codeOnly = (Set.Data is SetData.Object || e.Statements.IsEmpty) && MapDataBytes == 0 && e.Expires == null;
        var value = codeOnly ? CodeOnlyValue(CodeOf(e)) : NewValue(CodeOf(e));
        if (Set.Data is not SetData.Object && !e.Statements.IsEmpty)
        {
            if (!HasElementStatements) throw new CodegenException($"set '{Set.Name}' was compiled without element statements: an element with statements needs a reload");
            var shape = ShapeOf(e.Statements);
            var code = StatementShapes.ToList().IndexOf(shape);
            if (code < 0) throw new CodegenException($"set '{Set.Name}': element statements '{string.Join(" ", shape)}' are not compiled into the program (needs a reload)");
            BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), (uint)code + 1);
            for (var i = 0; i < e.Statements.Count; i++)
                BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(SlotsOffset + 4 * i), SlotOf(e.Statements[i]));
        }
        if (MapDataBytes > 0)
        {
            if (e.Data is not { } data || data.Length != MapDataBytes)
                throw new CodegenException($"map '{Set.Name}': an element without {MapDataBytes} bytes of data");
            data.Bytes.AsSpan().CopyTo(value.AsSpan(MapDataOffset));
        }
        if (e.Expires is ulong expires)
        {
            if (!HasTimeouts) throw new CodegenException($"set '{Set.Name}' was compiled without timeouts: an element with an expiry needs a reload");
            // jiffies64 is never 0 (it starts 5 minutes before 2^32 wraps) so 0 can mean "never"
            BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(ExpiresOffset), expires == 0 ? 1 : expires);
        }
        if (!IsLpm)
            foreach (var p in e.Key)
                if (p is not KeyPart.Exact)
                    throw new CodegenException($"set '{Set.Name}' was compiled as a hash map: a prefix or range element needs a reload");
        // one exact field (a set of addresses, ports...): its bytes are the key, without the general expansion's lists
        if (e.Key.Count == 1 && Set.Key.Fields.Count == 1 && e.Key[0] is KeyPart.Exact x)
        {
            var bytes = Checked(x.Value, Set.Key.Fields[0]).Bytes;
            // a hash key that is exactly the value shares the value's array: entry keys are only read (hashed,
            // compared, copied into map writes), and a set of a million addresses keeps a million of them
            if (!IsLpm && bytes.Length == KeySize)
            {
                entries.Add((ImmutableCollectionsMarshal.AsArray(bytes)!, value));
                return;
            }
            var key = new byte[KeySize];
            bytes.AsSpan().CopyTo(key.AsSpan(DataOffset));
            if (IsLpm) BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(Set.Key.Fields[0].Bytes * 8));
            entries.Add((key, value));
            return;
        }
        foreach (var key in KeysOf(e)) entries.Add((key, value));
    }

    /// <summary>The counter ids of an element's statements (none for an object map's).</summary>
    public IEnumerable<ulong> CountersOf(SetElement e) =>
        Set.Data is SetData.Object ? [] : e.Statements.OfType<CounterStatement>().Select(c => c.Id);

    /// <summary>A statement list as the program compiles it: every state slot 0 (a quota's starting `used` too).</summary>
    public ValueList<Statement> ShapeOf(ValueList<Statement> statements) => statements.Select(st => st switch
    {
        CounterStatement => new CounterStatement(0),
        QuotaStatement q => new QuotaStatement(q.Bytes, q.Over, 0),
        LimitStatement l => (Statement)(l with { StateSlot = 0 }),
        _ => throw new CodegenException($"set '{Set.Name}': element statement '{st}' is not supported by the BPF backend"),
    }).ToValueList();

    /// <summary>The state slot a statement runs on: a counter's slot in the program's counter map, a quota's or limit's own.</summary>
    uint SlotOf(Statement st) => st switch
    {
        CounterStatement c => (uint)(_counterSlot(c.Id) ?? throw new CodegenException($"set '{Set.Name}': counter #{c.Id} has no slot in the program (needs a reload)")),
        QuotaStatement q => (uint)q.StateSlot,
        LimitStatement l => (uint)l.StateSlot,
        _ => throw new CodegenException($"set '{Set.Name}': element statement '{st}' is not supported by the BPF backend"),
    };

    /// <summary>
    /// Most map keys one element may expand to: a prefix or range in a field before the last becomes
    /// one exact value per member (an LPM key is one prefix of the whole concatenation).
    /// </summary>
    public const int MaxKeysPerElement = 1 << 16;

    private IEnumerable<byte[]> KeysOf(SetElement e)
    {
        var fields = Set.Key.Fields;
        if (e.Key.Count != fields.Count)
            throw new CodegenException($"set '{Set.Name}': element has {e.Key.Count} key parts, the key has {fields.Count} fields");
        if (ExactKey(e) is { } single)
        {
            yield return single;
            yield break;
        }
        // the fields before the last: every combination of their members, each an exact run of bytes
        var leads = new List<byte[]> { Array.Empty<byte>() };
        BigInteger count = 1;
        for (var i = 0; i < fields.Count - 1; i++)
        {
            var (from, to) = Members(e.Key[i], fields[i]);
            count *= to - from + 1;
            if (count > MaxKeysPerElement)
                throw new CodegenException($"set '{Set.Name}': element {Describe(e)} spans more than {MaxKeysPerElement} values in the fields " +
                    "before the last of the concatenation; bpfilter-nft expands them into exact keys");
            var next = new List<byte[]>();
            foreach (var lead in leads)
                for (var v = from; v <= to; v++)
                {
                    var bytes = new byte[fields[i].Bytes];
                    var raw = v.ToByteArray(isUnsigned: true, isBigEndian: true);
                    if (!v.IsZero) raw.CopyTo(bytes, bytes.Length - raw.Length);
                    next.Add([.. lead, .. bytes]);
                }
            leads = next;
        }
        var last = fields[^1];
        var parts = LastPart(e.Key[^1], last).ToList();
        if (count * parts.Count > MaxKeysPerElement)
            throw new CodegenException($"set '{Set.Name}': element {Describe(e)} expands to more than {MaxKeysPerElement} map keys");
        foreach (var exact in leads)
        {
            var lead = exact.Length * 8;
            foreach (var (data, bits) in parts)
            {
                var key = new byte[KeySize];
                exact.CopyTo(key, DataOffset);
                data.CopyTo(key, DataOffset + exact.Length);
                if (IsLpm) BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(lead + bits));
                yield return key;
            }
        }
    }

    /// <summary>
    /// The one key of an element whose parts are all exact values: their bytes end to end (what the general
    /// expansion below gives for them, without going through BigInteger: a grouped run is thousands of such
    /// elements compiled on every commit); null when some part is a prefix or range.
    /// </summary>
    private byte[]? ExactKey(SetElement e)
    {
        foreach (var p in e.Key)
            if (p is not KeyPart.Exact) return null;
        var key = new byte[KeySize];
        var at = DataOffset;
        for (var i = 0; i < e.Key.Count; i++)
        {
            var bytes = Checked(((KeyPart.Exact)e.Key[i]).Value, Set.Key.Fields[i]).Bytes;
            bytes.CopyTo(key, at);
            at += bytes.Length;
        }
        if (IsLpm) BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)((at - DataOffset) * 8));
        return key;
    }

    private string Describe(SetElement e) => string.Join(" . ", e.Key.Select((p, i) => p.Format(Set.Key.Fields[i])));

    /// <summary>The values [from, to] a key part of a non-last field stands for.</summary>
    private (BigInteger From, BigInteger To) Members(KeyPart part, Field f)
    {
        switch (part)
        {
            case KeyPart.Exact x:
                var v = ToBig(Checked(x.Value, f));
                return (v, v);
            case KeyPart.Prefix p:
                if (p.Length < 0 || p.Length > f.Bits) throw new CodegenException($"set '{Set.Name}': bad prefix length {p.Length}");
                var host = (BigInteger.One << (f.Bits - p.Length)) - 1;
                var start = ToBig(Checked(p.Value, f)) & ~host;
                return (start, start | host);
            case KeyPart.Range r:
                var a = ToBig(Checked(r.From, f));
                var b = ToBig(Checked(r.To, f));
                if (a > b) throw new CodegenException($"set '{Set.Name}': empty range {r}");
                return (a, b);
            default:
                throw new CodegenException($"set '{Set.Name}': unknown key part {part}");
        }
    }

    private IEnumerable<(byte[] Data, int Bits)> LastPart(KeyPart part, Field f)
    {
        var width = f.Bytes * 8;
        switch (part)
        {
            case KeyPart.Exact x:
                yield return (Checked(x.Value, f).Bytes.ToArray(), width);
                break;
            case KeyPart.Prefix p:
                if (p.Length < 0 || p.Length > f.Bits) throw new CodegenException($"set '{Set.Name}': bad prefix length {p.Length}");
                // Sub-byte fields are right-aligned in their bytes: the prefix starts after the padding bits.
                yield return (Checked(p.Value, f).Bytes.ToArray(), width - f.Bits + p.Length);
                break;
            case KeyPart.Range r:
                foreach (var pr in SplitRange(ToBig(Checked(r.From, f)), ToBig(Checked(r.To, f)), width))
                    yield return pr;
                break;
        }
    }

    private Value Checked(Value v, Field f) =>
        v.Length == f.Bytes ? v : throw new CodegenException($"set '{Set.Name}': value {v} is not {f.Bytes} bytes for {f}");

    private static BigInteger ToBig(Value v) => new(v.Bytes.AsSpan(), isUnsigned: true, isBigEndian: true);

    /// <summary>Splits [from, to] into the fewest aligned prefixes.</summary>
    internal static IEnumerable<(byte[] Data, int Bits)> SplitRange(BigInteger from, BigInteger to, int width)
    {
        if (from > to) throw new CodegenException($"empty range {from}-{to}");
        var bytes = width / 8;
        while (from <= to)
        {
            var k = 0;
            while (k < width)
            {
                var size = BigInteger.One << (k + 1);
                if (from % size != 0 || from + size - 1 > to) break;
                k++;
            }
            var data = new byte[bytes];
            var raw = from.ToByteArray(isUnsigned: true, isBigEndian: true);
            raw.CopyTo(data, bytes - raw.Length);
            yield return (data, width - k);
            from += BigInteger.One << k;
        }
    }
}
