using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// The committed state of one namespace as bytes, and back: what a daemon restart needs to answer nft
/// exactly as before (generation, handles and handle counters, every table, chain, rule, set, element and
/// object, owner flags, emulated counter cells).
/// <para>
/// Format (version 3): magic "BFNFTST1", u32 version, u64 payload length, u64 FNV-1a hash of the payload
/// (all little-endian), then the payload: a flat run of records, each a u32 kind, a u32 length and that
/// many bytes. Records nest by order: a chain, set or object belongs to the last table, a rule to the last
/// chain, an element to the last set. Record bodies are netlink attributes: the engine's Nft.Bytecode
/// object as its NEWTABLE, NEWCHAIN, NEWRULE, NEWSET or NEWOBJ message (elements as their NFTA_LIST_ELEM
/// nest), as Nft.Bytecode encodes and decodes them, plus the bookkeeping only the engine keeps (handle
/// counter, counter cells, element identity and expiry). Every length is checked on the way back;
/// anything wrong raises <see cref="InvalidDataException"/>. Version 1 wrote tables, chains, sets and
/// objects field by field; this daemon refuses it like any other version it does not read. Version 3
/// adds to the namespace record the engine clock's offset from the monotonic clock at save time
/// (<see cref="Counters.ClockOffsetMs"/>): element deadlines are instants on the engine's clock, and a
/// later process whose engine runs on another clock (bpfilterd moved from the monotonic clock to the
/// kernel's jiffies) moves them by the change of offset. Version 2 is read as saved on the monotonic
/// clock (Environment.TickCount64), which it was.
/// </para>
/// </summary>
internal static partial class StateCodec
{
    static ReadOnlySpan<byte> Magic => "BFNFTST1"u8;
    const uint Version = 3, OldestVersion = 2;
    const int HeaderSize = 8 + 4 + 8 + 8;
    const int MaxRecord = 16 << 20;

    enum Kind : uint { Namespace = 1, Table = 2, Chain = 3, Rule = 4, Set = 5, Element = 6, Object = 7, Backend = 8 }

    // attribute types inside records
    const ushort NsGeneration = 1, NsTableHandle = 2, NsElementSeq = 3, NsClockOffset = 4;
    const ushort Message = 1;
    const ushort TLastHandle = 2;
    const ushort RCounter = 2, RCIndex = 1, RCPackets = 2, RCBytes = 3;
    /// <summary>
    /// The index of a dynset expression whose elements never expire (<see cref="DynsetExpr.ElementsNeverExpire"/>), one
    /// each; 4 as the rule journal puts its JrIndex, 3, beside a rule's attributes.
    /// </summary>
    const ushort RNeverExpire = 4;
    const ushort EElem = 1, EKey = 2, EKeyEnd = 3, EFlags = 4, ETimeout = 5, EExpires = 6, ESeq = 7;
    const ushort OPackets = 2, OBytes = 3;

    /// <summary>What a namespace's state is besides its committed ruleset.</summary>
    /// <param name="ClockOffsetMs">The engine clock minus Environment.TickCount64 when the state was saved
    /// (0 in a version 2 file: its deadlines are on the monotonic clock).</param>
    public readonly record struct Counters(uint Generation, ulong TableHandle, long ElementSeq, byte[]? Backend = null, long ClockOffsetMs = 0);

    /// <summary>About the bytes of one plain element's record (56 for an IPv4 address): a big set's part of the file's first size.</summary>
    const int ElementRecordEstimate = 64;

    /// <summary>A set with more elements than this is sized by <see cref="ElementRecordEstimate"/>, not by encoding each twice.</summary>
    const int MeasuredElements = 4096;

    public static byte[] Encode(RulesetSnapshot snapshot, Counters counters)
    {
        var ns = new NetlinkWriter(64);
        int nsRec = BeginRecord(ns, Kind.Namespace);
        ns.PutU32(NsGeneration, counters.Generation);
        PutU64(ns, NsTableHandle, counters.TableHandle);
        PutU64(ns, NsElementSeq, (ulong)counters.ElementSeq);
        PutU64(ns, NsClockOffset, (ulong)counters.ClockOffsetMs);
        EndRecord(ns, nsRec);
        var backend = counters.Backend;
        int prefix = HeaderSize + ns.Length + (backend is { } b0 ? 8 + b0.Length : 0);

        // The table records (the bulk: every rule and element) are written straight into the file after the header, the
        // namespace record and the backend's bytes (any length: the writer pads as if from 0), the other messages encoded
        // in place. The file is sized by the records as measured first (every rule's message is encoded then, kept, and
        // copied in here), so no writer grows and no file is copied out of one; only a big set's elements are estimated,
        // and if the size is not exact the bytes are copied into a file of the right size once. Every byte is written:
        // the file is not zeroed first (tens of megabytes at 100,000 rules).
        long size = Math.Min(prefix + PutRecords(new NetlinkWriter(4096), snapshot, measure: true), Array.MaxLength);
        var w = new NetlinkWriter(GC.AllocateUninitializedArray<byte>((int)size), prefix);
        PutRecords(w, snapshot, measure: false);

        var file = w.Buffer;
        if (prefix + w.Length != file.Length)
        {
            file = GC.AllocateUninitializedArray<byte>(prefix + w.Length);
            w.WrittenSpan.CopyTo(file.AsSpan(prefix));
        }
        var at = file.AsSpan(HeaderSize);
        ns.WrittenSpan.CopyTo(at);
        at = at[ns.Length..];
        if (backend != null)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(at, (uint)Kind.Backend);
            BinaryPrimitives.WriteUInt32LittleEndian(at[4..], (uint)backend.Length);
            backend.CopyTo(at[8..]);
        }
        var body = file.AsSpan(HeaderSize);
        Magic.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), Version);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(12), (ulong)body.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(20), Fnv1a(body));
        return file;
    }

    /// <summary>
    /// Writes every table record into <paramref name="w"/> and returns their bytes; with <paramref name="measure"/>, each
    /// record is written alone and taken out again, to size the file (records start and end 4-aligned, so alone is as in
    /// the file): exact except for the sets past <see cref="MeasuredElements"/>, which are estimated. A rule's message is
    /// encoded when measuring (and kept, <see cref="PutRuleMessage"/>) when it was not yet.
    /// </summary>
    static long PutRecords(NetlinkWriter w, RulesetSnapshot snapshot, bool measure)
    {
        long bytes = 0;
        foreach (var t in snapshot.Tables)
        {
            PutTableRecord(w, t);
            Measured(w, measure, ref bytes);
            foreach (var c in t.Chains)
            {
                PutChainRecord(w, t, c);
                Measured(w, measure, ref bytes);
                foreach (var r in c.Rules)
                {
                    PutRuleRecord(w, r, t.Family);
                    Measured(w, measure, ref bytes);
                }
            }
            foreach (var s in t.Sets)
            {
                PutSetRecord(w, t, s);
                Measured(w, measure, ref bytes);
                if (measure && s.Elements.Count > MeasuredElements)
                {
                    bytes += (long)ElementRecordEstimate * s.Elements.Count;
                    continue;
                }
                foreach (var e in s.Elements)
                {
                    PutElementRecord(w, e);
                    Measured(w, measure, ref bytes);
                }
            }
            foreach (var o in t.Objects)
            {
                PutObjectRecord(w, t, o);
                Measured(w, measure, ref bytes);
            }
        }
        return measure ? bytes : w.Length;
    }

    /// <summary>When measuring, the record just written is counted and taken out of the writer.</summary>
    static void Measured(NetlinkWriter w, bool measure, ref long bytes)
    {
        if (!measure) return;
        bytes += w.Length;
        w.Clear();
    }

    static void PutTableRecord(NetlinkWriter w, TableRecord t)
    {
        int rec = BeginRecord(w, Kind.Table);
        PutMessage(w, NftMsgType.NewTable, t.Family, t.Table.Encode);
        PutU64(w, TLastHandle, t.Handles.Last);
        EndRecord(w, rec);
    }

    static void PutChainRecord(NetlinkWriter w, TableRecord t, ChainRecord c)
    {
        int rec = BeginRecord(w, Kind.Chain);
        PutMessage(w, NftMsgType.NewChain, t.Family, c.Chain.Encode);
        EndRecord(w, rec);
    }

    static void PutRuleRecord(NetlinkWriter w, RuleRecord r, byte family)
    {
        int rec = BeginRecord(w, Kind.Rule);
        PutRule(w, r, family);
        EndRecord(w, rec);
    }

    static void PutSetRecord(NetlinkWriter w, TableRecord t, SetRecord s)
    {
        int rec = BeginRecord(w, Kind.Set);
        PutMessage(w, NftMsgType.NewSet, t.Family, s.Set.Encode);
        EndRecord(w, rec);
    }

    static void PutElementRecord(NetlinkWriter w, ElementRecord e)
    {
        int rec = BeginRecord(w, Kind.Element);
        PutElement(w, e);
        EndRecord(w, rec);
    }

    static void PutObjectRecord(NetlinkWriter w, TableRecord t, ObjectRecord o)
    {
        int rec = BeginRecord(w, Kind.Object);
        PutMessage(w, NftMsgType.NewObj, t.Family, o.Object.Encode);
        if (o.Counter is { } cell)
        {
            PutU64(w, OPackets, cell.Packets);
            PutU64(w, OBytes, cell.Bytes);
        }
        EndRecord(w, rec);
    }

    /// <summary>Opens a record (u32 kind, u32 length) in <paramref name="w"/>; its attributes follow, then <see cref="EndRecord"/>.</summary>
    static int BeginRecord(NetlinkWriter w, Kind kind)
    {
        int start = w.Length;
        Span<byte> h = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(h, (uint)kind);
        w.WriteRaw(h);
        return start;
    }

    /// <summary>Closes the record <see cref="BeginRecord"/> opened at <paramref name="start"/>: its length, every attribute written since.</summary>
    static void EndRecord(NetlinkWriter w, int start)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)(w.Length - start - 8));
        w.Overwrite(start + 4, len);
    }

    /// <summary>An element record's attributes: the element as nf_tables encodes it, its identity, timeout, expiry and insertion order.</summary>
    static void PutElement(NetlinkWriter w, ElementRecord e)
    {
        var en = w.BeginNestedRaw(EElem);
        e.Element.Encode(w, NftaList.Elem, WireFormat.AsDecoded);
        w.EndNested(en);
        PutElementKey(w, e.Id);
        if (e.Timeout is ulong et) PutU64(w, ETimeout, et);
        if (e.ExpiresAtMs is long ex) PutU64(w, EExpires, (ulong)ex);
        PutU64(w, ESeq, (ulong)e.InsertSeq);
    }

    static void PutElementKey(NetlinkWriter w, ElementKey id)
    {
        w.PutRaw(EKey, id.Key);
        if (id.KeyEnd != null) w.PutRaw(EKeyEnd, id.KeyEnd);
        w.PutU32(EFlags, id.Flags);
    }

    static ElementKey ElementKeyOf(in Attrs a) => new(a.Bytes(EKey) ?? throw Bad("element without a key"), a.Bytes(EKeyEnd), a.U32(EFlags));

    static ElementRecord ElementOf(in Attrs a) =>
        new ElementRecord(ElementKeyOf(a), SetElement.Decode(a.Inner(EElem)), a.OptU64(ETimeout), a.OptU64(EExpires) is ulong x ? (long)x : null)
            { InsertSeq = (long)a.U64(ESeq) };

    /// <summary>
    /// A rule record's attributes: its NEWRULE message, its counter cells by expression index and the dynsets whose
    /// elements never expire (decided when the rule was made, from the set's default then: not derivable on reload).
    /// </summary>
    static void PutRule(NetlinkWriter w, RuleRecord r, byte family)
    {
        PutRuleMessage(w, r, family);
        var exprs = r.Expressions;
        for (int i = 0; i < exprs.Count; i++)
            if (exprs[i] is DynsetExpr { ElementsNeverExpire: true }) w.PutU32(RNeverExpire, (uint)i);
        for (int i = 0; i < r.Counters.Length; i++)
        {
            if (r.Counters[i] is not { } cell) continue;
            var n = w.BeginNestedRaw(RCounter);
            w.PutU32(RCIndex, (uint)i);
            PutU64(w, RCPackets, cell.Packets);
            PutU64(w, RCBytes, cell.Bytes);
            w.EndNested(n);
        }
    }

    static RuleRecord RuleOf(in Attrs a)
    {
        var rule = Rule.Decode(MessageOf(a));
        int n = rule.Expressions?.Count ?? 0;
        var cells = new CounterCell?[n];
        foreach (var c in a.All(RCounter))
        {
            var ca = new Attrs(c);
            uint i = ca.U32(RCIndex);
            if (i >= n) throw Bad($"counter of expression {i} in a rule of {n} expressions");
            cells[i] = new CounterCell(ca.U64(RCPackets), ca.U64(RCBytes));
        }
        var neverExpire = a.All(RNeverExpire).ToList();
        if (neverExpire.Count > 0)
        {
            var exprs = rule.Expressions!.ToArray();
            foreach (var na in neverExpire)
            {
                uint i = U32Of(na);
                if (i >= n || exprs[i] is not DynsetExpr d) throw Bad($"expression {i} noted as a dynset whose elements never expire is none");
                exprs[i] = d with { ElementsNeverExpire = true };
            }
            rule = rule with { Expressions = exprs };
        }
        return new RuleRecord(rule, [.. cells]);
    }

    /// <summary>
    /// A rule's NEWRULE message in attribute <see cref="Message"/>, encoded once per rule object (kept in the record's forms):
    /// rule objects are immutable and a committed rule keeps its object until it is replaced, so a commit that adds one
    /// rule to thousands encodes one. A rule not encoded yet is encoded in place and its bytes copied out to keep.
    /// </summary>
    static void PutRuleMessage(NetlinkWriter w, RuleRecord r, byte family)
    {
        if (r.Forms.Message is { } kept && ReferenceEquals(kept.Of, r.Rule) && kept.Family == family)
        {
            w.PutRaw(Message, kept.Message);
            return;
        }
        // as PutMessage, without a delegate made for every rule
        var n = w.BeginNestedRaw(Message);
        var h = w.BeginNfMessage(Nfnl.SubsysNftables, (byte)NftMsgType.NewRule, NlmFlags.None, 0, 0, family, 0);
        r.Rule.Encode(w, WireFormat.AsDecoded);
        w.EndMessage(h);
        w.EndNested(n);
        int start = n.Start + NetlinkLimits.AttrHeaderSize;
        r.Forms.Message = new EncodedRule(r.Rule, family, w.WrittenSpan[start..].ToArray());
    }

    /// <summary>An object as its NEW* message (kernel attribute order: stored objects keep no request layout), in attribute <see cref="Message"/>, encoded in place.</summary>
    static void PutMessage(NetlinkWriter w, NftMsgType type, byte family, Action<NetlinkWriter, WireFormat> encode)
    {
        var n = w.BeginNestedRaw(Message);
        var h = w.BeginNfMessage(Nfnl.SubsysNftables, (byte)type, NlmFlags.None, 0, 0, family, 0);
        encode(w, WireFormat.AsDecoded);
        w.EndMessage(h);
        w.EndNested(n);
    }

    static void PutU64(NetlinkWriter w, ushort type, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        w.PutRaw(type, b);
    }

    internal static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in data)
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        return h;
    }

    // ---- decoding ----------------------------------------------------------------------------

    sealed class TableBuilder(TableRecord head)
    {
        public TableRecord Head = head;
        public readonly List<ChainBuilder> Chains = [];
        public readonly List<SetBuilder> Sets = [];
        public readonly List<ObjectRecord> Objects = [];
    }

    sealed class ChainBuilder(ChainRecord head)
    {
        public readonly ChainRecord Head = head;
        public readonly ImmutableList<RuleRecord>.Builder Rules = ImmutableList.CreateBuilder<RuleRecord>();
    }

    sealed class SetBuilder(SetRecord head)
    {
        public readonly SetRecord Head = head;
        public ElementSet Elements = ElementSet.Empty;
    }

    static InvalidDataException Bad(string why) => new($"bpfilter-nft state: {why}");

    public static (RulesetSnapshot Snapshot, Counters Counters) Decode(ReadOnlySpan<byte> file)
    {
        if (file.Length < HeaderSize) throw Bad($"{file.Length} bytes, shorter than the {HeaderSize}-byte header");
        if (!file[..8].SequenceEqual(Magic)) throw Bad("not a bpfilter-nft state file (bad magic)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(file[8..]);
        if (version is < OldestVersion or > Version) throw Bad($"version {version}, this daemon reads versions {OldestVersion} to {Version}");
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file[12..]);
        if (length != (ulong)(file.Length - HeaderSize)) throw Bad($"payload of {file.Length - HeaderSize} bytes, header says {length} (truncated?)");
        var body = file[HeaderSize..];
        if (Fnv1a(body) != BinaryPrimitives.ReadUInt64LittleEndian(file[20..])) throw Bad("checksum mismatch");
        try
        {
            return DecodeBody(body);
        }
        catch (NetlinkException e)
        {
            throw Bad($"malformed record: {e.ExtAck ?? $"errno {e.Errno}"}");
        }
    }

    static (RulesetSnapshot, Counters) DecodeBody(ReadOnlySpan<byte> body)
    {
        Counters? counters = null;
        byte[]? backend = null;
        var tables = new List<TableBuilder>();
        int pos = 0;
        while (pos < body.Length)
        {
            if (body.Length - pos < 8) throw Bad($"record header cut short at offset {pos}");
            var kind = (Kind)BinaryPrimitives.ReadUInt32LittleEndian(body[pos..]);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(body[(pos + 4)..]);
            if (len > MaxRecord || len > body.Length - pos - 8) throw Bad($"record at offset {pos} claims {len} bytes, {body.Length - pos - 8} left");
            var rec = body.Slice(pos + 8, (int)len);
            if (kind == Kind.Backend)
            {
                if (backend != null) throw Bad("two backend records");
                backend = rec.ToArray();
                pos += 8 + (int)len;
                continue;
            }
            var a = new Attrs(rec);
            TableBuilder LastTable() => tables.Count > 0 ? tables[^1] : throw Bad($"{kind} record before any table");
            switch (kind)
            {
                case Kind.Namespace:
                    if (counters != null) throw Bad("two namespace records");
                    counters = new Counters(a.U32(NsGeneration), a.U64(NsTableHandle), (long)a.U64(NsElementSeq),
                        ClockOffsetMs: a.OptU64(NsClockOffset) is ulong off ? (long)off : 0);
                    break;
                case Kind.Table:
                    if (counters == null) throw Bad("table before the namespace record");
                    tables.Add(new TableBuilder(new TableRecord(Table.Decode(MessageOf(a)) with { Layout = null },
                        new HandleCounter(a.U64(TLastHandle)), [], [], [])));
                    break;
                case Kind.Chain:
                {
                    var chain = Chain.Decode(MessageOf(a));
                    chain = chain with { Layout = null, Hook = chain.Hook is { } h ? h with { Layout = null } : null };
                    LastTable().Chains.Add(new ChainBuilder(new ChainRecord(chain, [])));
                    break;
                }
                case Kind.Rule:
                {
                    var t = LastTable();
                    if (t.Chains.Count == 0) throw Bad("rule record before any chain");
                    t.Chains[^1].Rules.Add(RuleOf(a));
                    break;
                }
                case Kind.Set:
                {
                    var set = Set.Decode(MessageOf(a));
                    set = set with { Layout = null, Desc = set.Desc is { } d ? d with { Layout = null } : null };
                    LastTable().Sets.Add(new SetBuilder(new SetRecord(set, ElementSet.Empty)));
                    break;
                }
                case Kind.Element:
                {
                    var t = LastTable();
                    if (t.Sets.Count == 0) throw Bad("element record before any set");
                    var e = ElementOf(a);
                    var s = t.Sets[^1];
                    if (s.Elements.TryGetValue(e.Id, out _)) throw Bad($"duplicate element in set {s.Head.Name}");
                    s.Elements = s.Elements.Add(e);
                    break;
                }
                case Kind.Object:
                {
                    var obj = NftObject.Decode(MessageOf(a)) with { Layout = null };
                    CounterCell? cell = a.Has(OPackets) || a.Has(OBytes) ? new CounterCell(a.U64(OPackets), a.U64(OBytes)) : null;
                    LastTable().Objects.Add(new ObjectRecord(obj, cell));
                    break;
                }
                default:
                    throw Bad($"unknown record kind {(uint)kind} at offset {pos}");
            }
            pos += 8 + (int)len;
        }
        if (counters is not { } ns) throw Bad("no namespace record");
        var list = tables.Select(t => t.Head with
        {
            Chains = t.Chains.Select(c => c.Head with { Rules = c.Rules.ToImmutable() }).ToImmutableList(),
            Sets = t.Sets.Select(s => s.Head with { Elements = s.Elements }).ToImmutableList(),
            Objects = [.. t.Objects],
        }).ToImmutableList();
        return (new RulesetSnapshot(list), ns with { Backend = backend });
    }

    /// <summary>The NEW* message a record carries (see <see cref="PutMessage"/>).</summary>
    static NetlinkMessage MessageOf(in Attrs a)
    {
        var reader = new NetlinkMessageReader(a.Required(Message));
        if (!reader.TryRead(out var msg) || reader.Malformed) throw Bad("record without a well-formed message");
        return msg;
    }

    static uint U32Of(byte[] b) => b.Length == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b) : throw Bad($"a {b.Length}-byte value where 4 bytes belong");

    /// <summary>A record's attributes, parsed once (every length checked); values copied out.</summary>
    readonly struct Attrs
    {
        readonly List<(ushort Type, byte[] Payload)> _list;

        public Attrs(ReadOnlySpan<byte> payload)
        {
            _list = [];
            var r = new AttributeReader(payload, 0);
            while (r.TryRead(out var a))
                _list.Add((a.Type, a.Payload.ToArray()));
        }

        public bool Has(ushort type) => _list.Any(x => x.Type == type);
        public IEnumerable<byte[]> All(ushort type) => _list.Where(x => x.Type == type).Select(x => x.Payload);
        public byte[]? Bytes(ushort type) => _list.FirstOrDefault(x => x.Type == type).Payload;
        public byte[] Required(ushort type) => Bytes(type) ?? throw Bad($"attribute {type} missing");

        /// <summary>The one attribute nested in attribute <paramref name="type"/> (a wrapped expression or element), for the decoders that read a nest themselves.</summary>
        public NetlinkAttribute Inner(ushort type)
        {
            var r = new AttributeReader(Required(type), 0);
            if (!r.TryRead(out var a)) throw Bad($"attribute {type} holds nothing");
            return a;
        }

        public uint U32(ushort type) => U32Of(Required(type));
        public ulong U64(ushort type) => Required(type) is { Length: 8 } b ? BinaryPrimitives.ReadUInt64LittleEndian(b) : throw Bad($"attribute {type} is not 8 bytes");
        public ulong? OptU64(ushort type) => Has(type) ? U64(type) : null;
    }
}
