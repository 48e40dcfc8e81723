using Nft.Bytecode;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine;
using Nft.Kernel;

namespace Bpfilter.Daemon.Placement;

/// <summary>
/// What an unplaced named counter or quota holds: its count beyond what the emulation lists itself (a quota's bytes in
/// <see cref="Live"/>), and a quota's start point (<see cref="KernelQuotaStarts"/>: the created `used`, 0 after a reset).
/// </summary>
internal readonly record struct UnplacedCount(CounterValue Live, ulong Start = 0);

/// <summary>
/// What a transaction does to the unplaced objects (<see cref="UnplacedObjects.Plan"/>): those that stay or become unplaced
/// with their counts (<see cref="Next"/>), those BPF held until now, whose count is read at the commit (<see cref="FromBpf"/>),
/// and what BPF takes over from them (<see cref="CounterSeeds"/>, <see cref="QuotaSeeds"/>).
/// </summary>
internal sealed record UnplacedMove(IReadOnlyDictionary<KernelObjectKey, UnplacedCount> Next, IReadOnlyList<(KernelObjectKey Key, ulong Slot)> FromBpf,
    IReadOnlyList<CounterSeed> CounterSeeds, IReadOnlyList<QuotaSeed> QuotaSeeds);

/// <summary>
/// The named counters and quotas neither side holds: no chain placed in BPF or in the kernel's nf_tables names them (every
/// rule naming one went, or only rules of chains no base chain reaches do). In the kernel's own nf_tables such an object keeps
/// its count (a quota its `used`), is listed and reset with it, and a rule naming it again counts on from there. So the count
/// is read when the object leaves its side, kept here (and in the state file), listed and reset here, and handed to the side
/// that takes the object next: BPF's slot is seeded with it, the kernel's object is sent with it (NFTA_COUNTER_PACKETS/BYTES,
/// NFTA_QUOTA_CONSUMED).
/// </summary>
internal sealed class UnplacedObjects
{
    readonly Dictionary<KernelObjectKey, UnplacedCount> _held = [];

    /// <summary>Every unplaced object's count, for the state file.</summary>
    public IReadOnlyCollection<(KernelObjectKey Key, UnplacedCount Count)> All => [.. _held.Select(h => (h.Key, h.Value))];

    /// <summary>Restores the counts an earlier run saved (its first commit keeps those still unplaced).</summary>
    public void Restore(IEnumerable<(KernelObjectKey Key, UnplacedCount Count)> saved)
    {
        foreach (var (key, count) in saved) _held[key] = count;
    }

    /// <summary>What the listing adds for <paramref name="c"/> when it is unplaced; else null.</summary>
    public CounterValue? Read(CounterRef c) => c.ObjectName != null && _held.TryGetValue(KernelObjectKey.Of(c), out var h) ? h.Live : null;

    /// <summary>`nft reset counter`/`quota` of an unplaced object: it counts from nothing (a quota from `used` 0); false when not unplaced.</summary>
    public bool Reset(CounterRef c)
    {
        if (c.ObjectName == null || !_held.ContainsKey(KernelObjectKey.Of(c))) return false;
        _held[KernelObjectKey.Of(c)] = default;
        return true;
    }

    /// <summary>
    /// The move a transaction makes, for every named counter and quota of <paramref name="tables"/> (the proposed ruleset) the
    /// batch did not renew (a renewed one starts from what the batch gave it, as does one a later batch creates anew).
    /// </summary>
    /// <param name="before">where the committed placement counts a named counter or consumes a named quota (a renewed one: nowhere; <see cref="CounterSides.Named"/>)</param>
    /// <param name="after">where the proposed placement does</param>
    /// <param name="kernelCount">what the kernel counted for an object until now (read before the kernel commit takes it away)</param>
    /// <param name="kernelStart">the start point of a quota the kernel consumes, when not the created `used`</param>
    public UnplacedMove Plan(IReadOnlyList<SourceTable> tables, Func<CounterRef, bool> renewed, CounterCarry.Sides before, CounterCarry.Sides after,
        Func<CounterRef, CounterValue?> kernelCount, Func<CounterRef, ulong?> kernelStart)
    {
        var next = new Dictionary<KernelObjectKey, UnplacedCount>();
        var fromBpf = new List<(KernelObjectKey, ulong)>();
        var counters = new List<CounterSeed>();
        var quotas = new List<QuotaSeed>();
        foreach (var t in tables)
            foreach (var o in t.Objects ?? [])
            {
                if (o.Name == null || o.Data is not (CounterExpr or QuotaExpr)) continue;
                var c = CounterRef.Named(t.Family, t.Name, o.Name, o.Type);
                if (renewed(c)) continue;
                var key = KernelObjectKey.Of(c);
                var quota = o.Data as QuotaExpr;
                var (was, now) = (before(c), after(c));
                if (_held.TryGetValue(key, out var held))
                {
                    if (now.Slot is not { } s)
                    {
                        // to the kernel: sent with it (ToKernel)
                        if (!now.Kernel) next[key] = held;
                    }
                    else if (quota != null) quotas.Add(new QuotaSeed(s, held.Live.Bytes, held.Start));
                    else counters.Add(new CounterSeed(s, held.Live, KeepBpf: false));
                    continue;
                }
                if (now.Slot != null || now.Kernel) continue;
                if (was.Slot is { } slot) fromBpf.Add((key, slot));
                else if (was.Kernel) next[key] = new UnplacedCount(kernelCount(c) ?? default, quota != null ? kernelStart(c) ?? quota.Consumed ?? 0 : 0);
            }
        return new UnplacedMove(next, fromBpf, counters, quotas);
    }

    /// <summary>
    /// <paramref name="tables"/> (the kernel's, as placed) with each unplaced object the kernel takes sent with its count, and each
    /// such quota's start point added to <paramref name="starts"/>; the same list when the kernel takes none.
    /// </summary>
    public IReadOnlyList<SourceTable> ToKernel(IReadOnlyList<SourceTable> tables, Func<CounterRef, bool> renewed, ICollection<QuotaStart> starts)
    {
        if (_held.Count == 0 || !KernelObjectKey.HeldBy(tables).Overlaps(_held.Keys)) return tables;
        return CounterCarry.Rewritten(tables, (at, e) =>
        {
            if (at.ObjectName == null || renewed(at) || !_held.TryGetValue(KernelObjectKey.Of(at), out var held)) return null;
            if (e is CounterExpr) return new CounterExpr(held.Live.Bytes, held.Live.Packets);
            if (e is not QuotaExpr q) return null;
            starts.Add(new QuotaStart(at, held.Start));
            // capped at the quota, as CounterCarry.ToKernel does: the kernel refuses more
            return q with { Consumed = Math.Min(q.Bytes, held.Start + held.Live.Bytes) };
        });
    }

    /// <summary>
    /// The commit of <paramref name="move"/>: the objects unplaced from now on, those BPF held until now with what BPF counted
    /// (<paramref name="bpfCount"/>, read after the swap: the ledger holds all of it) or consumed (<paramref name="bpfQuotas"/>,
    /// read before the swap takes the slot's start point away).
    /// </summary>
    public void Commit(UnplacedMove move, Func<ulong, CounterValue> bpfCount, IReadOnlyDictionary<KernelObjectKey, UnplacedCount> bpfQuotas)
    {
        _held.Clear();
        foreach (var (key, count) in move.Next) _held[key] = count;
        foreach (var (key, slot) in move.FromBpf)
            _held[key] = key.Type == NftObjectType.Quota ? bpfQuotas.GetValueOrDefault(key) : new UnplacedCount(bpfCount(slot));
    }

    /// <summary>What BPF consumed for each quota of <paramref name="move"/> it gives up (before the swap), with its start point.</summary>
    public static Dictionary<KernelObjectKey, UnplacedCount> QuotasFromBpf(UnplacedMove? move, Func<ulong, (ulong Used, ulong? Start)> bpfQuota)
    {
        var read = new Dictionary<KernelObjectKey, UnplacedCount>();
        foreach (var (key, slot) in move?.FromBpf ?? [])
            if (key.Type == NftObjectType.Quota && bpfQuota(slot) is var (used, start))
                read[key] = new UnplacedCount(new CounterValue(0, used), start ?? 0);
        return read;
    }
}
