using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// An element another packet path added to a set BPF's packet path takes over (the kernel's nf_tables, where the set was
/// placed until the transaction moved its chains to BPF), written into the new program's map as its own packet path would
/// have made it: <see cref="Element"/>'s key, data and expiry (jiffies64, what the element has left), the
/// <see cref="Timeout"/> the other packet path gave it (jiffies) and its statements' state (<see cref="State"/>: a
/// counter's packets and bytes, a quota's consumed bytes), in the statement list of the new program's set that has the
/// same statements. The kernel's own set keeps such elements through any transaction: so must BPF's.
/// </summary>
public sealed record PacketPathSeed(Ir.SetElement Element, ulong? Timeout, IReadOnlyList<PacketElementState> State)
{
    /// <summary>
    /// The map entry of the element in <paramref name="layout"/>, or why it has none: a list with a limit (its bucket
    /// lives in the bucket map, which nothing fills for it) or with statements the set's packet path never gives.
    /// </summary>
    internal (byte[] Key, byte[] Value)? Entry(SetLayout layout, out string? why)
    {
        why = null;
        var entries = layout.EntriesOf(Element);
        if (entries.Count != 1)
        {
            why = "not one map entry";
            return null;
        }
        var (key, shared) = entries[0];
        // EntriesOf may hand out one array for every element without statements, data and expiry
        var value = (byte[])shared.Clone();
        if (Timeout is ulong t && layout.HasElementTimeouts) BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(SetLayout.TimeoutOffset), t);
        if (State.Count == 0) return (key, value);
        var tag = TagIn(layout);
        if (tag < 0)
        {
            why = $"its statements '{string.Join(" ", State.Select(s => s.Statement))}' are no list BPF's packet path keeps for the set";
            return null;
        }
        // bit 0 alone: written to both copies (not bit 1, made in one copy only)
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(4), 1u | (uint)tag << SetLayout.TagShift);
        for (var i = 0; i < State.Count; i++)
        {
            var at = value.AsSpan(layout.PacketStateOffset(tag, i));
            if (State[i].Statement is CounterStatement)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(at, State[i].Packets);
                BinaryPrimitives.WriteUInt64LittleEndian(at[8..], State[i].Bytes);
            }
            else BinaryPrimitives.WriteUInt64LittleEndian(at, State[i].Bytes);
        }
        return (key, value);
    }

    /// <summary>The tag of the set's list with the statements of <see cref="State"/> (a quota's bytes and inversion alike); -1 when none, or it has a limit.</summary>
    int TagIn(SetLayout layout)
    {
        var lists = layout.Set.ElementLists;
        for (var tag = 0; tag < lists.Count; tag++)
            if (lists[tag].Count == State.Count && lists[tag].Select((s, i) => (s, State[i].Statement)).All(p => p switch
                {
                    (CounterStatement, CounterStatement) => true,
                    (QuotaStatement q, QuotaStatement w) => q.Bytes == w.Bytes && q.Over == w.Over,
                    _ => false,
                }))
                return tag;
        return -1;
    }
}
