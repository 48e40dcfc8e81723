using System.Buffers.Binary;
using System.Text;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>
/// The journal: commits that changed only set elements, or only rules of existing chains
/// (<c>StateCodec.RuleJournal.cs</c>), appended after a full state instead of encoding every element and rule
/// again (a set of a million elements is tens of megabytes; one `add element` is a few dozen bytes). Replayed onto the state it follows, it gives what a full state written after the same
/// commits holds.
/// <para>
/// Format: magic "BFNFTJ03" (J02, whose rule records hold the backend's whole state, and J01, written by daemons that had element records only, are read too; a daemon that reads up to J02 refuses J03), u64 the FNV-1a hash of the full state's payload it follows (as in that state's
/// header; a journal left beside a newer state names another hash and is ignored), then records, each a u32
/// payload length, a u64 FNV-1a hash of the payload and the payload: netlink attributes, the generation
/// before and after the commit, the element sequence and handle counters after it, and per set the keys the commit touched,
/// each with the element record it holds now or as absent; a rule record adds per chain its rule changes and the
/// backend's state, whole or as the change from the backend's state before it (<see cref="BackendStateDelta"/>). A record cut short at the end of
/// the file (a crash while appending it, before the commit was answered), or damaged with nothing but zero
/// bytes after it (a machine crash before the page cache was written back: records are not fsynced), is
/// ignored; anything else wrong raises <see cref="InvalidDataException"/>.
/// </para>
/// </summary>
internal static partial class StateCodec
{
    // J02 may hold rule records (StateCodec.RuleJournal), which a reader of J01 would not know to apply; J03's rule
    // records hold the backend's state as a delta (BackendStateDelta), which a reader of J02 would skip, keeping the old state
    static ReadOnlySpan<byte> JournalMagic => "BFNFTJ03"u8;
    static ReadOnlySpan<byte> FullBackendJournalMagic => "BFNFTJ02"u8;
    static ReadOnlySpan<byte> ElementJournalMagic => "BFNFTJ01"u8;
    const int JournalHeaderSize = 8 + 8;
    const int JournalRecordHead = 4 + 8;

    const ushort JFrom = 1, JTo = 2, JElementSeq = 3, JSet = 4, JTableHandle = 5, JHandles = 6;
    const ushort JsFamily = 1, JsTable = 2, JsName = 3, JsPut = 4, JsRemove = 5, JsLastHandle = 6;

    /// <summary>One set's keys touched by a commit: each with the element it holds now, or null when removed.</summary>
    public readonly record struct SetTouch(byte Family, string Table, string Set, IReadOnlyList<(ElementKey Key, ElementRecord? Now)> Keys);

    /// <summary>The journal's header for the full state <paramref name="state"/> (<see cref="Encode"/>'s bytes).</summary>
    public static byte[] JournalHeader(ReadOnlySpan<byte> state)
    {
        if (state.Length < HeaderSize || !state[..8].SequenceEqual(Magic)) throw new ArgumentException("not a bpfilter-nft state", nameof(state));
        var h = new byte[JournalHeaderSize];
        JournalMagic.CopyTo(h);
        state.Slice(20, 8).CopyTo(h.AsSpan(8));
        return h;
    }

    /// <summary>One framed journal record.</summary>
    /// <param name="handles">the namespace's table handle counter and every table's: a batch's other messages may have used some up</param>
    /// <param name="chains">rule changes (<see cref="RuleChanges"/>); none in an element-only commit</param>
    /// <param name="backend">the backend's state after a commit that changed rules (<see cref="Counters.Backend"/>); null: unchanged</param>
    /// <param name="backendBefore">the backend's state the journal holds before this record: given, <paramref name="backend"/> is written as the change from it when that is smaller</param>
    /// <param name="backendHashes">the <see cref="Fnv1a"/> of <paramref name="backendBefore"/> and <paramref name="backend"/>, when the caller has them</param>
    public static byte[] JournalRecord(uint from, uint to, long elementSeq, ulong tableHandle, RulesetSnapshot handles, IEnumerable<SetTouch> sets,
        IReadOnlyList<ChainChange>? chains = null, byte[]? backend = null, byte[]? backendBefore = null, (ulong Before, ulong After)? backendHashes = null)
    {
        var w = new NetlinkWriter(256);
        w.PutU32(JFrom, from);
        w.PutU32(JTo, to);
        PutU64(w, JElementSeq, (ulong)elementSeq);
        PutU64(w, JTableHandle, tableHandle);
        foreach (var t in handles.Tables)
        {
            var tn = w.BeginNestedRaw(JHandles);
            w.PutU32(JsFamily, t.Family);
            w.PutRaw(JsTable, Encoding.UTF8.GetBytes(t.Name));
            PutU64(w, JsLastHandle, t.Handles.Last);
            w.EndNested(tn);
        }
        foreach (var s in sets)
        {
            var sn = w.BeginNestedRaw(JSet);
            w.PutU32(JsFamily, s.Family);
            w.PutRaw(JsTable, Encoding.UTF8.GetBytes(s.Table));
            w.PutRaw(JsName, Encoding.UTF8.GetBytes(s.Set));
            foreach (var (key, now) in s.Keys)
            {
                var kn = w.BeginNestedRaw(now != null ? JsPut : JsRemove);
                if (now != null) PutElement(w, now);
                else PutElementKey(w, key);
                w.EndNested(kn);
            }
            w.EndNested(sn);
        }
        foreach (var c in chains ?? []) PutChainChange(w, c);
        if (backend != null)
        {
            var delta = backendBefore != null ? BackendStateDelta.Of(backendBefore, backend, backendHashes?.Before, backendHashes?.After) : null;
            if (delta != null && delta.Length < backend.Length) w.PutRaw(JBackendDelta, delta);
            else w.PutRaw(JBackend, backend);
        }
        var payload = w.WrittenSpan;
        var record = new byte[JournalRecordHead + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(4), Fnv1a(payload));
        payload.CopyTo(record.AsSpan(JournalRecordHead));
        return record;
    }

    /// <summary>
    /// <paramref name="snapshot"/> and <paramref name="counters"/> (decoded from <paramref name="state"/>) with
    /// <paramref name="journal"/>'s records applied; unchanged when the journal is empty or follows another state.
    /// </summary>
    public static (RulesetSnapshot, Counters) Replay(ReadOnlySpan<byte> state, RulesetSnapshot snapshot, Counters counters, ReadOnlySpan<byte> journal)
    {
        // a header cut short: the first append never completed, so no commit was answered from it
        if (journal.Length < JournalHeaderSize) return (snapshot, counters);
        if (!journal[..8].SequenceEqual(JournalMagic) && !journal[..8].SequenceEqual(FullBackendJournalMagic) && !journal[..8].SequenceEqual(ElementJournalMagic))
            throw Bad("journal: bad magic");
        if (!journal.Slice(8, 8).SequenceEqual(state.Slice(20, 8))) return (snapshot, counters); // follows an older state
        int pos = JournalHeaderSize;
        while (pos < journal.Length)
        {
            if (journal.Length - pos < JournalRecordHead) break; // cut short while appending
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(journal[pos..]);
            if (len > journal.Length - pos - JournalRecordHead) break;
            var payload = journal.Slice(pos + JournalRecordHead, (int)len);
            var after = journal[(pos + JournalRecordHead + (int)len)..];
            if (Fnv1a(payload) != BinaryPrimitives.ReadUInt64LittleEndian(journal[(pos + 4)..]))
            {
                // the last record, or one followed by zeros only: records are not fsynced (StateStore), and after a
                // machine crash the file may end in blocks its size covers that were never written back
                if (after.IndexOfAnyExcept((byte)0) < 0) break;
                throw Bad($"journal: checksum mismatch in the record at offset {pos}");
            }
            try
            {
                (snapshot, counters) = Apply(snapshot, counters, payload);
            }
            catch (NetlinkException e)
            {
                throw Bad($"journal: malformed record at offset {pos}: {e.ExtAck ?? $"errno {e.Errno}"}");
            }
            pos += JournalRecordHead + (int)len;
        }
        return (snapshot, counters);
    }

    static (RulesetSnapshot, Counters) Apply(RulesetSnapshot snapshot, Counters counters, ReadOnlySpan<byte> payload)
    {
        var a = new Attrs(payload);
        uint from = a.U32(JFrom), to = a.U32(JTo);
        if (from != counters.Generation) throw Bad($"journal: a record from generation {from} follows generation {counters.Generation}");
        var tables = snapshot.Tables;
        foreach (var sb in a.All(JSet))
        {
            var s = new Attrs(sb);
            byte family = (byte)s.U32(JsFamily);
            string table = NameOf(s.Required(JsTable)), name = NameOf(s.Required(JsName));
            int ti = tables.FindIndex(t => t.Family == family && t.Name == table);
            if (ti < 0) throw Bad($"journal: no table {table} (family {family})");
            var t = tables[ti];
            int si = t.Sets.FindIndex(x => x.Name == name);
            if (si < 0) throw Bad($"journal: no set {name} in table {table}");
            var elements = t.Sets[si].Elements;
            var r = new AttributeReader(sb, 0);
            while (r.TryRead(out var k))
            {
                if (k.Type is not (JsPut or JsRemove)) continue;
                var ka = new Attrs(k.Payload);
                if (k.Type == JsPut)
                {
                    var e = ElementOf(ka);
                    elements = elements.Remove(e.Id).Add(e);
                }
                else
                {
                    elements = elements.Remove(ElementKeyOf(ka)); // absent too when the batch added it and removed it again
                }
            }
            tables = tables.SetItem(ti, t with { Sets = t.Sets.SetItem(si, t.Sets[si] with { Elements = elements }) });
        }
        foreach (var cb in a.All(JChain)) tables = ApplyChainChange(tables, cb);
        foreach (var hb in a.All(JHandles))
        {
            var h = new Attrs(hb);
            byte family = (byte)h.U32(JsFamily);
            string table = NameOf(h.Required(JsTable));
            int ti = tables.FindIndex(t => t.Family == family && t.Name == table);
            if (ti < 0) throw Bad($"journal: no table {table} (family {family})");
            tables = tables.SetItem(ti, tables[ti] with { Handles = new HandleCounter(h.U64(JsLastHandle)) });
        }
        var backend = a.Bytes(JBackend) ?? counters.Backend;
        if (a.Bytes(JBackendDelta) is { } delta)
            backend = BackendStateDelta.Apply(counters.Backend ?? throw Bad("journal: a backend state delta follows no backend state"), delta);
        return (snapshot with { Tables = tables },
            counters with { Generation = to, ElementSeq = (long)a.U64(JElementSeq), TableHandle = a.U64(JTableHandle), Backend = backend });
    }

    static string NameOf(byte[] b) => NetlinkString.Decode(b);
}
