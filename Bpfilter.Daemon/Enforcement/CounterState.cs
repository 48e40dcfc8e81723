using System.Text;
using Bpfilter.Daemon.Placement;
using Nft.Engine;
using Nft.Lifter;

namespace Bpfilter.Daemon.Enforcement;

/// <summary>
/// The counter bookkeeping that lives only in the daemon and must survive a restart, keyed by what nft names
/// (family, table, chain, rule handle), not by the lifter's slot ids (a restarted daemon hands those out
/// anew): per BPF rule counter, the totals carried from replaced programs and the reset baseline; per
/// kernel-placed rule or object counter, the reset baseline. Version 2 also keeps every BPF entry's object
/// name (named counters run in BPF) and slot id (a restarted daemon that hands out the same ids compiles the
/// same programs and adopts the pinned ones, their counts included); version 1, with neither, is still read.
/// A version byte, then three counted lists; every length is checked when read (<see cref="InvalidDataException"/>).
/// </summary>
internal static class CounterState
{
    const byte Version = 2, WithoutSlots = 1;

    /// <param name="Slot">the lifter's slot id (null from a version 1 file)</param>
    public sealed record Bpf(CounterKey Key, (ulong, ulong) Carried, (ulong, ulong) Zero, ulong? Slot = null);

    public sealed record Saved(List<Bpf> BpfCounters, List<((byte, string, ulong, int) Key, CounterValue Base)> KernelRules,
        List<((byte, string, string) Key, CounterValue Base)> KernelObjects);

    public static byte[] Encode(IEnumerable<Bpf> bpf, KernelCounterView? kernel)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8);
        w.Write(Version);
        var list = bpf.ToList();
        w.Write(list.Count);
        foreach (var b in list)
        {
            w.Write(b.Key.Family);
            w.Write(b.Key.Table);
            w.Write(b.Key.Chain);
            w.Write(b.Key.RuleHandle);
            w.Write(b.Key.Object ?? "");
            w.Write(b.Carried.Item1);
            w.Write(b.Carried.Item2);
            w.Write(b.Zero.Item1);
            w.Write(b.Zero.Item2);
            w.Write(b.Slot ?? throw new ArgumentException($"counter {b.Key} has no slot id"));
        }
        var (rules, objects) = kernel?.Baselines ?? (new Dictionary<(byte, string, ulong, int), CounterValue>(), new Dictionary<(byte, string, string), CounterValue>());
        w.Write(rules.Count);
        foreach (var ((family, table, handle, index), v) in rules)
        {
            w.Write(family);
            w.Write(table);
            w.Write(handle);
            w.Write(index);
            w.Write(v.Packets);
            w.Write(v.Bytes);
        }
        w.Write(objects.Count);
        foreach (var ((family, table, name), v) in objects)
        {
            w.Write(family);
            w.Write(table);
            w.Write(name);
            w.Write(v.Packets);
            w.Write(v.Bytes);
        }
        w.Flush();
        return ms.ToArray();
    }

    public static Saved Decode(ReadOnlySpan<byte> bytes)
    {
        using var r = new BinaryReader(new MemoryStream(bytes.ToArray()), Encoding.UTF8);
        try
        {
            // version 1 had no named counters in BPF (its entries are all rule counters) and no slot ids
            var v = r.ReadByte();
            if (v != Version && v != WithoutSlots) throw new InvalidDataException($"counter state version {v}, this daemon reads {WithoutSlots} and {Version}");
            int Count(int minEntry)
            {
                int n = r.ReadInt32();
                if (n < 0 || (long)n * minEntry > r.BaseStream.Length - r.BaseStream.Position)
                    throw new InvalidDataException($"counter state: {n} entries cannot fit in what is left");
                return n;
            }
            var bpf = new List<Bpf>();
            for (int i = 0, n = Count(v == Version ? 52 : 43); i < n; i++)
            {
                var key = new CounterKey(r.ReadByte(), r.ReadString(), r.ReadString(), r.ReadUInt64());
                if (v == Version && r.ReadString() is { Length: > 0 } name) key = key with { Object = name };
                bpf.Add(new Bpf(key, (r.ReadUInt64(), r.ReadUInt64()), (r.ReadUInt64(), r.ReadUInt64()), v == Version ? r.ReadUInt64() : null));
            }
            var slots = bpf.Where(b => b.Slot != null).Select(b => b.Slot).ToList();
            if (slots.Distinct().Count() != slots.Count || bpf.Select(b => b.Key).Distinct().Count() != bpf.Count)
                throw new InvalidDataException("counter state: a rule or a slot id is given twice");
            var rules = new List<((byte, string, ulong, int), CounterValue)>();
            for (int i = 0, n = Count(30); i < n; i++)
                rules.Add(((r.ReadByte(), r.ReadString(), r.ReadUInt64(), r.ReadInt32()), new CounterValue(r.ReadUInt64(), r.ReadUInt64())));
            var objects = new List<((byte, string, string), CounterValue)>();
            for (int i = 0, n = Count(19); i < n; i++)
                objects.Add(((r.ReadByte(), r.ReadString(), r.ReadString()), new CounterValue(r.ReadUInt64(), r.ReadUInt64())));
            if (r.BaseStream.Position != r.BaseStream.Length) throw new InvalidDataException("counter state: trailing bytes");
            return new Saved(bpf, rules, objects);
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException)
        {
            throw new InvalidDataException($"counter state is cut short or malformed: {e.Message}");
        }
    }
}
