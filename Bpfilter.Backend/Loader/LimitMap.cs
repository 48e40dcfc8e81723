using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// The token buckets of every limit, one per state slot in an array map that all programs share: nft_limit's
/// struct nft_limit {spinlock, last, tokens}, one for all CPUs and every rule naming the limit. The value is
/// { struct bpf_spin_lock lock; u32 pad; u64 last; u64 tokens; }, described by BTF (the verifier finds the
/// lock through it). User space writes whole values (a new bucket) and never touches the lock.
/// </summary>
public sealed unsafe class LimitMap : IDisposable
{
    /// <summary>How many limits the map holds; a program needing a slot beyond it is refused (placed in the kernel).</summary>
    public const int Capacity = 4096;
    public const int ValueSize = 24;
    /// <summary>Offsets in the value.</summary>
    public const short Lock = 0, Last = 8, Tokens = 16;

    LimitMap(BpfMap map) => Map = map;

    public BpfMap Map { get; }

    /// <summary>The map spec programs are compiled against (created by <see cref="Create"/>, never by a program's loader).</summary>
    public static MapSpec Spec => new(CompiledProgram.LimitsMap, BpfMapType.Array, 4, ValueSize, Capacity, []) { Shared = true };

    public static LimitMap Create() =>
        new(SpinLockMap.Create(BpfMapType.Array, CompiledProgram.LimitsMap, 4, ValueSize, Capacity, Lock));

    /// <summary>
    /// Wraps a map reopened from a pin (a restarted daemon keeps every bucket as it is). Its BTF is not checked
    /// here: a map without the spin lock's BTF is refused by the verifier when a program is loaded against it.
    /// </summary>
    public static LimitMap Adopt(BpfMap map) =>
        map.Type == BpfMapType.Array && map.KeySize == 4 && map.ValueSize == ValueSize && map.MaxEntries == Capacity
            ? new LimitMap(map)
            : throw new InvalidDataException($"map {map.Name} is not a limit map");

    /// <summary>A new bucket, as nft_limit_init leaves it: full. last 0 is the same as "now" for a full bucket, as refills stop at the size.</summary>
    public void Fill(ulong slot, ulong tokensMax) => Write(slot, 0, tokensMax);

    public (ulong Last, ulong Tokens) Read(ulong slot)
    {
        Span<byte> v = stackalloc byte[ValueSize];
        Map.TryLookup(Key(slot), v);
        return (BitConverter.ToUInt64(v[Last..]), BitConverter.ToUInt64(v[Tokens..]));
    }

    public void Write(ulong slot, ulong last, ulong tokens)
    {
        var v = new byte[ValueSize];
        BitConverter.TryWriteBytes(v.AsSpan(Last), last);
        BitConverter.TryWriteBytes(v.AsSpan(Tokens), tokens);
        Map.Update(Key(slot), v);
    }

    /// <summary>Whether the map has a slot <paramref name="slot"/>: the compiler refuses a limit beyond it, which then runs in the kernel.</summary>
    public static bool Holds(ulong slot) => slot < Capacity;

    static byte[] Key(ulong slot) => Holds(slot)
        ? BitConverter.GetBytes((uint)slot)
        : throw new ArgumentOutOfRangeException(nameof(slot), $"limit slot {slot} is beyond {Capacity}");

    public void Dispose() => Map.Dispose();
}
