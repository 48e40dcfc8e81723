using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The counter merge by difference of <see cref="PacketPathCarry.After"/>: a carried element that both programs counted on
/// after <see cref="PacketPathCarry.Before"/> (the old one until the swap, the new one since) gets the old program's counting
/// since the copy added to the new program's value, as the kernel's one element counts every packet: each counter's packets
/// and bytes and each quota's consumed bytes, the old value converted minus what Before wrote. The rest (code, expiry,
/// timeout, born stamps) stays the new program's, the newer.
/// </summary>
internal static class CountMerge
{
    /// <summary>
    /// <paramref name="now"/> (the new program's value, read just before) with what <paramref name="moved"/> (the old program's
    /// value now, converted) counted beyond <paramref name="written"/> (what Before wrote) added; null when there is nothing to
    /// add or <paramref name="now"/> is not that element any more (another tag or born stamp, or a count below the carried
    /// one: deleted and made again, its counts start anew).
    /// </summary>
    public static byte[]? Merged(SetLayout layout, byte[] written, byte[] moved, byte[] now)
    {
        if (ElementLists.TagOf(written) is not int tag || ElementLists.TagOf(moved) != tag || ElementLists.TagOf(now) != tag
            || tag >= layout.Set.ElementLists.Count || now.Length != written.Length || moved.Length != written.Length) return null;
        foreach (var born in layout.BornOffsets[tag])
            if (U64(now, born) != U64(written, born) || U64(moved, born) != U64(written, born)) return null;
        byte[]? merged = null;
        foreach (var at in Additive(layout, tag))
        {
            ulong w = U64(written, at), m = U64(moved, at), n = U64(now, at);
            if (n < w || m < w) return null;
            if (m == w) continue;
            merged ??= (byte[])now.Clone();
            BinaryPrimitives.WriteUInt64LittleEndian(merged.AsSpan(at), n + (m - w));
        }
        return merged;
    }

    /// <summary>The offsets of the u64 fields of list <paramref name="tag"/> that packets add to: a counter's two, a quota's one.</summary>
    static IEnumerable<int> Additive(SetLayout layout, int tag)
    {
        var list = layout.ElementList(tag);
        for (var i = 0; i < list.Count; i++)
        {
            var at = layout.PacketStateOffset(tag, i);
            if (list[i] is CounterStatement)
            {
                yield return at;
                yield return at + 8;
            }
            else if (list[i] is QuotaStatement) yield return at;
        }
    }

    static ulong U64(byte[] value, int at) => BinaryPrimitives.ReadUInt64LittleEndian(value.AsSpan(at));
}
