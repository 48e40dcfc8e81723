using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// The bytes consumed by every quota, one u64 per state slot in an array map that all programs share
/// (nft_quota's atomic64 `consumed`: one value for all CPUs, for every rule naming the quota). The
/// map is mmapped (BPF_F_MMAPABLE) so that user space reads and subtracts with the same atomic
/// operations the programs use: a reset takes back exactly what it read, as nft_quota's dump does.
/// </summary>
public sealed unsafe class QuotaMap : IDisposable
{
    /// <summary>BPF_F_MMAPABLE.</summary>
    public const uint Mmapable = BpfMap.Mmapable;
    /// <summary>How many quotas the map holds; a program needing a slot beyond it is refused (placed in the kernel).</summary>
    public const int Capacity = 4096;
    const int ProtRead = 1, ProtWrite = 2, MapShared = 1;

    /// <summary>Whether the map has a slot <paramref name="slot"/>: the compiler refuses a quota beyond it, which then runs in the kernel.</summary>
    public static bool Holds(ulong slot) => slot < Capacity;

    readonly long* _values;
    readonly nuint _length;

    QuotaMap(BpfMap map)
    {
        Map = map;
        _length = (nuint)(Capacity * sizeof(long));
        var p = Native.Mmap(null, _length, ProtRead | ProtWrite, MapShared, map.Fd.Value, 0);
        if (p == (void*)-1)
        {
            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            map.Dispose();
            throw new BpfException("mmapping the quota map", errno);
        }
        _values = (long*)p;
    }

    public BpfMap Map { get; }

    /// <summary>The map spec programs are compiled against (created by <see cref="Create"/>, never by a program's loader).</summary>
    public static MapSpec Spec => new(CompiledProgram.QuotasMap, BpfMapType.Array, 4, 8, Capacity, []) { Flags = Mmapable, Shared = true };

    public static QuotaMap Create() => new(BpfMap.Create(BpfMapType.Array, CompiledProgram.QuotasMap, 4, 8, Capacity, Mmapable));

    /// <summary>Wraps a map reopened from a pin (a restarted daemon keeps what was consumed).</summary>
    public static QuotaMap Adopt(BpfMap map) =>
        map.Type == BpfMapType.Array && map.KeySize == 4 && map.ValueSize == 8 && map.MaxEntries == Capacity
            ? new QuotaMap(map)
            : throw new InvalidDataException($"map {map.Name} is not a quota map");

    public ulong Read(ulong slot) => (ulong)Interlocked.Read(ref At(slot));

    public void Set(ulong slot, ulong value) => Interlocked.Exchange(ref At(slot), (long)value);

    /// <summary>Takes <paramref name="bytes"/> back from a slot, atomically against packets adding to it.</summary>
    public void Subtract(ulong slot, ulong bytes) => Interlocked.Add(ref At(slot), -(long)bytes);

    /// <summary>Adds <paramref name="bytes"/> to a slot, atomically against packets adding to it.</summary>
    public void Add(ulong slot, ulong bytes) => Interlocked.Add(ref At(slot), (long)bytes);

    ref long At(ulong slot) => ref Holds(slot) ? ref _values[slot] : ref ThrowSlot(slot);

    static ref long ThrowSlot(ulong slot) => throw new ArgumentOutOfRangeException(nameof(slot), $"quota slot {slot} is beyond {Capacity}");

    public void Dispose()
    {
        Native.Munmap(_values, _length);
        Map.Dispose();
    }
}
