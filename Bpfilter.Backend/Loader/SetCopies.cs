using System.Buffers.Binary;
using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// A set map kept twice for atomic batches: two copies (hash or LPM trie, as the spec says) in the two
/// slots of a BPF_MAP_TYPE_ARRAY_OF_MAPS the program looks up with its run's generation (0 or 1). A
/// batch is written to the copy packets do not read (the standby), the generation is switched, and once
/// no program still reads the old copy (<see cref="WaitForReaders"/>) the same batch is written to it.
/// The maps are owned by the <see cref="LoadedProgram"/>s that hold them (<see cref="Holders"/>) and closed
/// when the last one lets go: a set the packet path writes is one pair of copies for every program that reads
/// or writes it (the ipv4 and ipv6 programs of an inet chain, readers at other hooks), so an element one of them
/// adds is the others' too. Its holders keep equal generations (<see cref="SetBatch"/> switches them together).
/// </summary>
public sealed class SetCopies
{
    SetCopies(BpfMap outer, BpfMap copy0, BpfMap copy1, bool packetWritten, ElementBuckets? buckets = null, IReadOnlyList<IReadOnlyList<int>>? bornOffsets = null)
    {
        Outer = outer;
        Copies = [copy0, copy1];
        PacketWritten = packetWritten;
        Buckets = buckets;
        BornOffsets = bornOffsets ?? [];
        buckets?.Sharers.Add(this);
    }

    /// <summary>The token buckets of the limits the packet path gives the elements (null: none), one map for both copies (maybe shared with copies of an earlier layout, see <see cref="ElementBuckets"/>).</summary>
    public ElementBuckets? Buckets { get; }

    /// <summary>Per element tag of these copies' values, the offsets of its limits' born stamps (what names its buckets).</summary>
    public IReadOnlyList<IReadOnlyList<int>> BornOffsets { get; }

    /// <summary>The maps a program references by name: the outer map, the copies, the bucket map.</summary>
    public IEnumerable<(string Name, BpfMap Map)> Named(string setMap)
    {
        yield return (setMap, Outer);
        for (var i = 0; i < 2; i++) yield return (CopyName(setMap, i), Copies[i]);
        if (Buckets != null) yield return (ElementBuckets.Name(setMap), Buckets.Map);
    }

    /// <summary>Deletes the buckets of elements no copy sharing the bucket map holds any more (see <see cref="ElementBuckets.Sweep"/>).</summary>
    public int SweepBuckets() => Buckets?.Sweep() ?? 0;

    /// <summary>The program writes both copies itself (nft_dynset), see <see cref="MapSpec.PacketWritten"/>.</summary>
    public bool PacketWritten { get; }

    public BpfMap Outer { get; }
    public BpfMap[] Copies { get; }

    /// <summary>Copies (0, 1) of a packet-written set a failed write may have left unlike the other: stale for every holder, rewritten by the next that writes or switches to it.</summary>
    public HashSet<int> Stale { get; } = [];

    /// <summary>The programs whose code references these maps (by fd at load, or adopted from pins).</summary>
    public HashSet<LoadedProgram> Holders { get; } = [];

    /// <summary>Whether a program compiled with <paramref name="spec"/> can reference these copies as they are.</summary>
    public bool Fits(MapSpec spec) => spec.PacketWritten && PacketWritten
        && (spec.Buckets is null ? Buckets is null : Buckets?.Fits(spec.Buckets) == true && BucketSpec.SameOffsets(BornOffsets, spec.Buckets.BornOffsets))
        && Copies.All(c => c.Type == spec.Type && c.KeySize == spec.KeySize && c.ValueSize == spec.ValueSize && c.MaxEntries == spec.MaxEntries);

    /// <summary>Lets go of the maps for <paramref name="holder"/>; closes them when no holder is left.</summary>
    public void Release(LoadedProgram holder)
    {
        Holders.Remove(holder);
        if (Holders.Count == 0) Close();
    }

    /// <summary>Closes the maps (the last holder let go, or a load that failed before any held them); a bucket map other copies share stays theirs.</summary>
    public void Close()
    {
        Outer.Dispose();
        foreach (var c in Copies) c.Dispose();
        Buckets?.Release(this);
    }

    /// <summary>The pin and lookup names of the copies: the outer map's name with @0 and @1 (bpffs refuses dots).</summary>
    public static string CopyName(string map, int copy) => $"{map}@{copy}";

    /// <summary>
    /// Creates both copies filled with <paramref name="spec"/>'s entries and the outer map holding them; the bucket map is
    /// <paramref name="buckets"/> when given (shared with the copies of the program this one replaces, whose elements it
    /// carries with their stamps), else a new one.
    /// </summary>
    public static SetCopies Create(MapSpec spec, ElementBuckets? buckets = null)
    {
        if (buckets != null && (spec.Buckets is null || !buckets.Fits(spec.Buckets)))
            throw new InvalidOperationException($"set map {spec.Name}: the bucket map to share does not serve the program");
        var made = new List<BpfMap>();
        try
        {
            // a classifier's tables (arrays only the control plane writes) are written through their mapping: tens of megabytes
            var mapped = spec is { Type: BpfMapType.Array, PacketWritten: false, KeySize: 4 } && ClassifierTables.IsClassifierMap(spec.Name);
            for (var i = 0; i < 2; i++)
                made.Add(BpfMap.Create(spec.Type, CopyName(spec.Name, i), spec.KeySize, spec.ValueSize, spec.MaxEntries, mapped ? BpfMap.Mmapable : 0));
            if (mapped) BpfMap.FillMapped(made, spec.Entries);
            else BpfMap.UpdateMany(made, spec.Entries);
            var outer = BpfMap.Create(BpfMapType.ArrayOfMaps, spec.Name, 4, 4, 2, inner: made[0]);
            made.Add(outer);
            for (var i = 0; i < 2; i++) SetSlot(outer, i, made[i]);
            if (buckets == null && spec.Buckets is { } b)
            {
                buckets = ElementBuckets.Create(spec.Name, b);
                made.Add(buckets.Map);
            }
            return new SetCopies(outer, made[0], made[1], spec.PacketWritten, buckets, spec.Buckets?.BornOffsets);
        }
        catch
        {
            foreach (var m in made) m.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reopens pinned copies (opened by the caller): fails unless the outer map is a two-slot map of maps
    /// whose slots hold exactly these copies, shaped as <paramref name="spec"/> says.
    /// </summary>
    public static SetCopies Adopt(MapSpec spec, BpfMap outer, BpfMap copy0, BpfMap copy1, BpfMap? buckets = null)
    {
        if ((spec.Buckets is null) != (buckets is null))
            throw new InvalidDataException($"pinned map {spec.Name}: its bucket map is not the one the program was compiled with");
        if (outer.Type != BpfMapType.ArrayOfMaps || outer.MaxEntries != 2)
            throw new InvalidDataException($"pinned map {spec.Name} is not a two-slot map of maps");
        BpfMap[] copies = [copy0, copy1];
        Span<byte> key = stackalloc byte[4];
        Span<byte> id = stackalloc byte[4];
        for (var i = 0; i < 2; i++)
        {
            var c = copies[i];
            if (c.Type != spec.Type || c.KeySize != spec.KeySize || c.ValueSize != spec.ValueSize || c.MaxEntries < spec.Entries.Count
                || spec.PacketWritten && c.MaxEntries != spec.MaxEntries)
                throw new InvalidDataException($"pinned copy {i} of {spec.Name} is not the one the program was compiled with");
            BinaryPrimitives.WriteInt32LittleEndian(key, i);
            if (!outer.TryLookup(key, id) || BinaryPrimitives.ReadUInt32LittleEndian(id) != BpfInfo.Map(c.Fd.Value).Id)
                throw new InvalidDataException($"slot {i} of pinned map {spec.Name} does not hold its pinned copy {i}");
        }
        return new SetCopies(outer, copy0, copy1, spec.PacketWritten, buckets is null ? null : ElementBuckets.Adopt(buckets, spec.Buckets!), spec.Buckets?.BornOffsets);
    }

    static void SetSlot(BpfMap outer, int slot, BpfMap copy)
    {
        Span<byte> key = stackalloc byte[4];
        Span<byte> value = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(key, slot);
        BinaryPrimitives.WriteInt32LittleEndian(value, copy.Fd.Value);
        outer.Update(key, value);
    }

    /// <summary>
    /// Returns once no BPF program that started before the call still runs: updating a map-of-maps slot
    /// makes the kernel wait for an RCU grace period (maybe_wait_bpf_programs), and programs run under
    /// rcu_read_lock. The slot gets the copy it already holds, so packets see no change.
    /// </summary>
    public void WaitForReaders(int slot) => SetSlot(Outer, slot, Copies[slot]);
}
