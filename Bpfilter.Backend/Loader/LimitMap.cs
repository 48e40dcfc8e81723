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

    public static LimitMap Create()
    {
        var btf = Native.BtfNewEmpty();
        if (btf == 0) throw new BpfException("creating BTF for the limit map", 12);
        try
        {
            int Check(string what, int rc) => rc < 0 ? throw new BpfException($"BTF for the limit map: {what}", -rc) : rc;
            var u32 = Check("u32", Native.BtfAddInt(btf, "unsigned int", 4, 0));
            var u64 = Check("u64", Native.BtfAddInt(btf, "unsigned long long", 8, 0));
            var lockType = Check("struct bpf_spin_lock", Native.BtfAddStruct(btf, "bpf_spin_lock", 4));
            Check("bpf_spin_lock.val", Native.BtfAddField(btf, "val", u32, 0, 0));
            var value = Check("struct nft_limit", Native.BtfAddStruct(btf, "nft_limit", ValueSize));
            Check("lock", Native.BtfAddField(btf, "lock", lockType, Lock * 8, 0));
            Check("pad", Native.BtfAddField(btf, "pad", u32, 32, 0));
            Check("last", Native.BtfAddField(btf, "last", u64, Last * 8, 0));
            Check("tokens", Native.BtfAddField(btf, "tokens", u64, Tokens * 8, 0));
            Check("loading it", Native.BtfLoadIntoKernel(btf));
            // the map keeps its own reference to the BTF: the object is freed right after
            return new LimitMap(BpfMap.Create(BpfMapType.Array, CompiledProgram.LimitsMap, 4, ValueSize, Capacity,
                btf: (Native.BtfFd(btf), (uint)u32, (uint)value)));
        }
        finally
        {
            Native.BtfFree(btf);
        }
    }

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

    static byte[] Key(ulong slot) => slot < Capacity
        ? BitConverter.GetBytes((uint)slot)
        : throw new ArgumentOutOfRangeException(nameof(slot), $"limit slot {slot} is beyond {Capacity}");

    public void Dispose() => Map.Dispose();
}
