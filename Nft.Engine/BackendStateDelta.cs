using System.Buffers;
using System.Buffers.Binary;

namespace Nft.Engine;

/// <summary>
/// The backend's saved state (<see cref="IRulesetBackend.ExportState"/>) of a rule journal record as the change
/// from the bytes saved before it (the full state's, or the previous record's): copies of ranges of those bytes
/// and the bytes that are new. One rule added among 10,000 counted ones changes a counter entry, a layout slot and
/// a few counts, not the ~0.7 MB the whole state is. The backend's format is opaque here: the delta is of bytes,
/// so replaying it gives exactly the bytes the backend exported.
/// <para>
/// Format: u32 base length, u64 FNV-1a of the base, u32 result length, u64 FNV-1a of the result, then operations:
/// 0, u32 offset, u32 length (copy from the base); 1, u32 length, bytes (new bytes). <see cref="Apply"/> checks
/// the base it is given (records are replayed in order onto what the previous one left), every bound, and the result.
/// </para>
/// <para>
/// Diff as rsync matches blocks: the base is indexed by a rolling hash of every <see cref="Block"/>-byte block at
/// block boundaries; the result is scanned byte by byte, and a match (checked byte for byte) is extended backwards
/// over pending new bytes and forwards as far as both agree. Where the previous copy ended (an insertion) or as many
/// bytes on (an overwrite) is tried before the index: a base of repeated entries has many equal blocks, and the
/// index, a pass over the whole base, is built only once <see cref="IndexAfter"/> bytes ran without a long copy.
/// Before it, the <see cref="Near"/> bytes after the last long copy's end in the base are searched: a chance short
/// match (the zeros of an appended counter entry against the zero counts after the entries) moves the previous
/// copy's end off the insertion point, and a one-rule append then indexed the whole ~0.7 MB base on every add
/// to find the sections after the entries again, a few dozen bytes on. A shifted stretch matches at any of its
/// offsets, so the search is made every <see cref="Block"/> new bytes, and all of them together scan the base's
/// length at most (a vectorized search: less than indexing it).
/// </para>
/// </summary>
internal static class BackendStateDelta
{
    const int Block = 16;
    /// <summary>New bytes in a row after which the base's index is consulted (a moved or deleted stretch is found through it).</summary>
    const int IndexAfter = 256;
    /// <summary>A copy that long puts the scan back in step with the base (see <see cref="IndexAfter"/>).</summary>
    const int LongCopy = 4 * Block;
    const ulong Base = 1099511628211UL;
    const byte Copy = 0, Insert = 1;
    const int HeadSize = 4 + 8 + 4 + 8;
    /// <summary>Base bytes after the last long copy searched for a block before the index is (an insertion up to that far on).</summary>
    const int Near = 4096;

    /// <summary>How many times this thread indexed a base (tests: an append does not need to).</summary>
    [ThreadStatic] internal static int BaseIndexes;

    /// <summary>
    /// The delta that turns <paramref name="from"/> into <paramref name="to"/>; <paramref name="fromHash"/> and
    /// <paramref name="toHash"/>, when given, are their <see cref="StateCodec.Fnv1a"/> (the caller keeps the hash of the
    /// bytes the next delta will be made from, so that each is hashed once).
    /// </summary>
    public static byte[] Of(ReadOnlySpan<byte> from, ReadOnlySpan<byte> to, ulong? fromHash = null, ulong? toHash = null)
    {
        var w = new ArrayBufferWriter<byte>(256);
        var head = w.GetSpan(HeadSize);
        BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)from.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(head[4..], fromHash ?? StateCodec.Fnv1a(from));
        BinaryPrimitives.WriteUInt32LittleEndian(head[12..], (uint)to.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(head[16..], toHash ?? StateCodec.Fnv1a(to));
        w.Advance(HeadSize);

        // the base's block index is built only when IndexAfter bytes pass without a long copy: an edit of a few entries (a
        // rule's counter entry inserted, a count overwritten) is matched where the previous copy ended, without indexing the
        // base; short copies do not count (in repetitive bytes the guesses also match by chance after a deletion)
        Dictionary<ulong, int>? index = null;
        ulong top = 1; // Base^(Block-1), to roll the oldest byte out
        for (int i = 1; i < Block; i++) top *= Base;

        int j = 0, pending = 0, resume = 0, synced = 0, syncedFrom = 0; // syncedFrom: where the last long copy ended in the base
        int nearBudget = from.Length;
        ulong h = to.Length >= Block ? Hash(to[..Block]) : 0;
        while (j + Block <= to.Length)
        {
            if (index == null && j - synced >= IndexAfter)
            {
                BaseIndexes++;
                index = new Dictionary<ulong, int>(from.Length / Block + 1);
                for (int o = 0; o + Block <= from.Length; o += Block) index.TryAdd(Hash(from.Slice(o, Block)), o);
            }
            int match = Candidate(from, to, j, resume, resume + (j - pending), h, index);
            if (match < 0 && index == null && (j - pending) % Block == 0 && nearBudget > 0)
            {
                var near = from[syncedFrom..][..Math.Min(Near, from.Length - syncedFrom)];
                nearBudget -= near.Length;
                match = near.IndexOf(to.Slice(j, Block));
                if (match >= 0) match += syncedFrom;
            }
            if (match < 0)
            {
                if (j + Block < to.Length) h = (h - to[j] * top) * Base + to[j + Block];
                j++;
                continue;
            }
            // backwards over new bytes not yet written, then forwards as far as both agree
            while (j > pending && match > 0 && to[j - 1] == from[match - 1])
            {
                j--;
                match--;
            }
            int length = to[j..].CommonPrefixLength(from[match..]);
            PutInsert(w, to[pending..j]);
            PutCopy(w, match, length);
            j += length;
            pending = j;
            resume = match + length;
            if (length >= LongCopy) (synced, syncedFrom) = (j, resume);
            if (j + Block <= to.Length) h = Hash(to.Slice(j, Block));
        }
        PutInsert(w, to[pending..]);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>A base offset whose block equals the result's at <paramref name="j"/>, or -1.</summary>
    static int Candidate(ReadOnlySpan<byte> from, ReadOnlySpan<byte> to, int j, int inserted, int overwritten, ulong h, Dictionary<ulong, int>? index)
    {
        var want = to.Slice(j, Block);
        if (inserted + Block <= from.Length && from.Slice(inserted, Block).SequenceEqual(want)) return inserted;
        if (overwritten != inserted && overwritten + Block <= from.Length && from.Slice(overwritten, Block).SequenceEqual(want)) return overwritten;
        return index != null && index.TryGetValue(h, out var o) && from.Slice(o, Block).SequenceEqual(want) ? o : -1;
    }

    static void PutCopy(ArrayBufferWriter<byte> w, int offset, int length)
    {
        var s = w.GetSpan(9);
        s[0] = Copy;
        BinaryPrimitives.WriteUInt32LittleEndian(s[1..], (uint)offset);
        BinaryPrimitives.WriteUInt32LittleEndian(s[5..], (uint)length);
        w.Advance(9);
    }

    static void PutInsert(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) return;
        var s = w.GetSpan(5);
        s[0] = Insert;
        BinaryPrimitives.WriteUInt32LittleEndian(s[1..], (uint)bytes.Length);
        w.Advance(5);
        w.Write(bytes);
    }

    /// <summary>
    /// <paramref name="delta"/> applied to <paramref name="from"/>; <see cref="InvalidDataException"/> when the delta
    /// was made from other bytes, is malformed, or does not give the bytes it was made for.
    /// </summary>
    public static byte[] Apply(ReadOnlySpan<byte> from, ReadOnlySpan<byte> delta)
    {
        if (delta.Length < HeadSize) throw Bad("cut short");
        if (BinaryPrimitives.ReadUInt32LittleEndian(delta) != from.Length || BinaryPrimitives.ReadUInt64LittleEndian(delta[4..]) != StateCodec.Fnv1a(from))
            throw Bad("made from other bytes than the state before it");
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(delta[12..]);
        ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(delta[16..]);
        if (size > int.MaxValue) throw Bad($"a result of {size} bytes");
        var to = new byte[size];
        int at = 0, pos = HeadSize;
        while (pos < delta.Length)
        {
            byte op = delta[pos++];
            if (op == Copy)
            {
                if (delta.Length - pos < 8) throw Bad("a copy cut short");
                uint offset = BinaryPrimitives.ReadUInt32LittleEndian(delta[pos..]), length = BinaryPrimitives.ReadUInt32LittleEndian(delta[(pos + 4)..]);
                pos += 8;
                if (offset > from.Length || length > from.Length - offset || length > to.Length - at) throw Bad($"a copy of {length} bytes at {offset} out of bounds");
                from.Slice((int)offset, (int)length).CopyTo(to.AsSpan(at));
                at += (int)length;
            }
            else if (op == Insert)
            {
                if (delta.Length - pos < 4) throw Bad("an insert cut short");
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(delta[pos..]);
                pos += 4;
                if (length > delta.Length - pos || length > to.Length - at) throw Bad($"an insert of {length} bytes out of bounds");
                delta.Slice(pos, (int)length).CopyTo(to.AsSpan(at));
                at += (int)length;
                pos += (int)length;
            }
            else throw Bad($"operation {op}");
        }
        if (at != to.Length || StateCodec.Fnv1a(to) != hash) throw Bad("the result is not the state it was made for");
        return to;
    }

    static ulong Hash(ReadOnlySpan<byte> block)
    {
        ulong h = 0;
        foreach (byte b in block) h = h * Base + b;
        return h;
    }


    static InvalidDataException Bad(string what) => new($"bpfilter-nft state: backend state delta: {what}");
}
