using System.Buffers;
namespace Bpfilter.Backend.Libbpf;

public enum BpfMapType { Hash = 1, Array = 2, ProgArray = 3, PerCpuHash = 5, PerCpuArray = 6, LpmTrie = 11, ArrayOfMaps = 12, RingBuf = 27 }

/// <summary>A BPF map owned through its fd.</summary>
public sealed unsafe class BpfMap : IDisposable
{
    /// <summary>BPF_F_NO_PREALLOC, mandatory for LPM tries.</summary>
    public const uint NoPrealloc = 1;
    /// <summary>Update flags.</summary>
    public const ulong Any = 0, NoExist = 1, Exist = 2;
    /// <summary>BPF_F_LOCK: a lookup or update of a value holding a bpf_spin_lock copies it under that lock (never torn by a program's update).</summary>
    public const ulong Locked = 4;

    /// <summary>BPF_F_MMAPABLE: an array map user space can map and write (<see cref="FillMapped"/>).</summary>
    public const uint Mmapable = 1 << 10;

    private BpfMap(BpfFd fd, BpfMapType type, string name, int keySize, int valueSize, int maxEntries, uint flags)
    {
        Fd = fd; Type = type; Name = name; KeySize = keySize; ValueSize = valueSize; MaxEntries = maxEntries; Flags = flags;
    }

    public BpfFd Fd { get; }
    public BpfMapType Type { get; }
    public string Name { get; }
    public int KeySize { get; }
    public int ValueSize { get; }
    public int MaxEntries { get; }
    /// <summary>BPF_F_* flags the map was created with.</summary>
    public uint Flags { get; }

    /// <summary>bpf(2) calls through this handle that wrote elements (an update, a delete, an update batch): what keeping the map costs.</summary>
    public long WriteCalls => Interlocked.Read(ref _writeCalls);
    long _writeCalls;

    public bool IsPerCpu => Type is BpfMapType.PerCpuArray or BpfMapType.PerCpuHash;

    /// <summary>Bytes a lookup returns: per-CPU maps give one value (rounded to 8 bytes) per possible CPU.</summary>
    public int LookupSize => IsPerCpu ? (ValueSize + 7) / 8 * 8 * PossibleCpus : ValueSize;

    public static int PossibleCpus { get; } = Math.Max(1, Native.NumPossibleCpus());

    /// <param name="name">Kernel map name; truncated to 15 characters.</param>
    /// <param name="inner">For a map of maps: a map shaped like the ones its slots will hold.</param>
    /// <param name="btf">The BTF object and key/value type ids describing the map (a value holding a bpf_spin_lock needs them).</param>
    public static BpfMap Create(BpfMapType type, string name, int keySize, int valueSize, int maxEntries, uint flags = 0, BpfMap? inner = null,
        (int Fd, uint Key, uint Value)? btf = null)
    {
        if (type == BpfMapType.LpmTrie) flags |= NoPrealloc;
        var opts = new Native.MapCreateOpts { Sz = (nuint)sizeof(Native.MapCreateOpts), MapFlags = flags, InnerMapFd = (uint)(inner?.Fd.Value ?? 0) };
        if (btf is var (btfFd, key, value))
            (opts.BtfFd, opts.BtfKeyTypeId, opts.BtfValueTypeId) = ((uint)btfFd, key, value);
        var kname = KernelName(name);
        var fd = BpfException.Check($"creating {type} map '{name}'",
            Native.BpfMapCreate((int)type, kname, (uint)keySize, (uint)valueSize, (uint)maxEntries, &opts));
        return new BpfMap(new BpfFd(fd), type, name, keySize, valueSize, maxEntries, flags);
    }

    /// <summary>Kernel object names allow [A-Za-z0-9_.] and 15 characters.</summary>
    internal static string KernelName(string name)
    {
        var chars = name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? c : '_').Take(15).ToArray();
        return new string(chars);
    }

    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = Any)
    {
        CheckKey(key);
        var expect = IsPerCpu ? LookupSize : ValueSize;
        if (value.Length != expect) throw new ArgumentException($"map '{Name}' values are {expect} bytes, got {value.Length}");
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            Interlocked.Increment(ref _writeCalls);
            BpfException.Check($"updating map '{Name}'", Native.BpfMapUpdateElem(Fd.Value, k, v, flags));
        }
    }

    /// <summary>Entries per BPF_MAP_UPDATE_BATCH call (bounds the buffers a huge set needs).</summary>
    const int BatchSize = 1 << 16;

    /// <summary>
    /// Writes many entries with BPF_MAP_UPDATE_BATCH (one syscall per <see cref="BatchSize"/> entries instead of
    /// one per entry), or one by one where the map type has no batch updates (LPM tries: ENOTSUPP). Meant for
    /// filling a map nothing reads yet: a failure midway leaves the entries before it written.
    /// </summary>
    public void UpdateMany(IReadOnlyList<(byte[] Key, byte[] Value)> entries) => UpdateMany([this], entries);

    /// <summary>
    /// <see cref="UpdateMany(IReadOnlyList{ValueTuple{byte[], byte[]}})"/> into every map of <paramref name="maps"/>
    /// (alike in type, key and value size: a double-buffered map's copies), packing each batch's keys and values once
    /// for all of them: a classifier's vector map is tens of megabytes, and packing it per copy was half its fill (issue 12).
    /// </summary>
    public static void UpdateMany(IReadOnlyList<BpfMap> maps, IReadOnlyList<(byte[] Key, byte[] Value)> entries)
    {
        if (entries.Count == 0 || maps.Count == 0) return;
        var first = maps[0];
        if (maps.Any(m => m.Type != first.Type || m.KeySize != first.KeySize || m.ValueSize != first.ValueSize))
            throw new ArgumentException($"maps filled alike must be alike: {string.Join(", ", maps.Select(m => m.Name))}");
        if (first.IsPerCpu || first.Type == BpfMapType.LpmTrie)
        {
            foreach (var m in maps)
                foreach (var (k, v) in entries) m.Update(k, v);
            return;
        }
        int keySize = first.KeySize, valueSize = first.ValueSize;
        // batches of at most BatchBytes packed, in two pooled buffers: a classifier's vector map is tens of megabytes, and
        // buffers of a whole 65,536-entry batch were fresh large-object-heap arrays on every fill and every edit, each
        // counting toward a full collection of a heap of millions of class entries (issue 12)
        var perBatch = Math.Clamp(BatchBytes / (keySize + valueSize), 1, BatchSize);
        var keys = ArrayPool<byte>.Shared.Rent(perBatch * keySize);
        var values = ArrayPool<byte>.Shared.Rent(perBatch * valueSize);
        try
        {
            for (var at = 0; at < entries.Count; at += perBatch)
            {
                var n = Math.Min(perBatch, entries.Count - at);
                for (var i = 0; i < n; i++)
                {
                    var (k, v) = entries[at + i];
                    first.CheckKey(k);
                    if (v.Length != valueSize) throw new ArgumentException($"map '{first.Name}' values are {valueSize} bytes, got {v.Length}");
                    k.CopyTo(keys, i * keySize);
                    v.CopyTo(values, i * valueSize);
                }
                foreach (var m in maps) m.UpdateBatch(keys, values, entries, at, n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(keys);
            ArrayPool<byte>.Shared.Return(values);
        }
    }

    /// <summary>
    /// Fills new <see cref="Mmapable"/> array maps nothing reads yet by writing their mapped values: the same contents as
    /// <see cref="UpdateMany(IReadOnlyList{BpfMap}, IReadOnlyList{ValueTuple{byte[], byte[]}})"/> writes, without a copy
    /// into the kernel per entry and map (issue 12: a 10,000-rule ClassBench classifier's tables are about 80 MB per copy,
    /// and filling both copies with update batches was a sixth of the load's CPU). A key beyond the map is refused as the
    /// kernel refuses it (E2BIG), with the entries before it written.
    /// </summary>
    public static void FillMapped(IReadOnlyList<BpfMap> maps, IReadOnlyList<(byte[] Key, byte[] Value)> entries)
    {
        if (entries.Count == 0 || maps.Count == 0) return;
        var first = maps[0];
        if (maps.Any(m => m.Type != BpfMapType.Array || (m.Flags & Mmapable) == 0 || m.KeySize != 4 || m.ValueSize != first.ValueSize || m.MaxEntries != first.MaxEntries))
            throw new ArgumentException($"maps filled through their mapping must be alike mmapable arrays: {string.Join(", ", maps.Select(m => m.Name))}");
        // the kernel lays an mmapable array's values out from offset 0, each rounded up to 8 bytes (array_map_alloc)
        var stride = (first.ValueSize + 7) / 8 * 8;
        var page = (nuint)Environment.SystemPageSize;
        var length = ((nuint)first.MaxEntries * (nuint)stride + page - 1) / page * page;
        var mapped = new byte*[maps.Count];
        try
        {
            for (var m = 0; m < maps.Count; m++)
            {
                var p = Native.Mmap(null, length, ProtRead | ProtWrite, MapShared, maps[m].Fd.Value, 0);
                if (p == (void*)-1) throw new BpfException($"mmapping map '{maps[m].Name}'", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
                mapped[m] = (byte*)p;
            }
            foreach (var (k, v) in entries)
            {
                first.CheckKey(k);
                if (v.Length != first.ValueSize) throw new ArgumentException($"map '{first.Name}' values are {first.ValueSize} bytes, got {v.Length}");
                var index = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(k);
                if (index >= (uint)first.MaxEntries) throw new BpfException($"updating map '{first.Name}'", E2BIG, $"index {index} is beyond its {first.MaxEntries} entries");
                foreach (var p in mapped) v.CopyTo(new Span<byte>(p + (nuint)index * (nuint)stride, v.Length));
            }
        }
        finally
        {
            foreach (var p in mapped)
                if (p != null) Native.Munmap(p, length);
        }
    }

    const int ProtRead = 1, ProtWrite = 2, MapShared = 1, E2BIG = 7;

    /// <summary>Packed bytes per batch (keys and values): below the large object heap's threshold, so the pool reuses the buffers.</summary>
    const int BatchBytes = 64 * 1024;

    /// <summary>One BPF_MAP_UPDATE_BATCH of <paramref name="n"/> packed entries (entries[at..] one by one where the kernel has no batch update).</summary>
    void UpdateBatch(byte[] keys, byte[] values, IReadOnlyList<(byte[] Key, byte[] Value)> entries, int at, int n)
    {
        uint count = (uint)n;
        fixed (byte* k = keys)
        fixed (byte* v = values)
        {
            Interlocked.Increment(ref _writeCalls);
            var rc = Native.BpfMapUpdateBatch(Fd.Value, k, v, &count, null);
            if (rc == -ENOTSUPP || rc == -EOPNOTSUPP)
            {
                for (var i = 0; i < n; i++) Update(entries[at + i].Key, entries[at + i].Value);
                return;
            }
            BpfException.Check($"updating map '{Name}' ({count} of {n} entries written)", rc);
        }
    }

    /// <summary>The kernel's ENOTSUPP (524), which bpf(2) answers for a batch operation a map type lacks, and EOPNOTSUPP.</summary>
    const int ENOTSUPP = 524, EOPNOTSUPP = 95;

    /// <summary>Looks a key up; false when absent. Per-CPU maps fill LookupSize bytes. <paramref name="flags"/>: <see cref="Locked"/> or none.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value, ulong flags = Any)
    {
        CheckKey(key);
        if (value.Length < LookupSize) throw new ArgumentException($"map '{Name}' lookups need {LookupSize} bytes");
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var rc = flags == Any ? Native.BpfMapLookupElem(Fd.Value, k, v) : Native.BpfMapLookupElemFlags(Fd.Value, k, v, flags);
            if (rc == -2) return false;
            BpfException.Check($"looking up map '{Name}'", rc);
            return true;
        }
    }

    public bool Delete(ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        fixed (byte* k = key)
        {
            Interlocked.Increment(ref _writeCalls);
            var rc = Native.BpfMapDeleteElem(Fd.Value, k);
            if (rc == -2) return false;
            BpfException.Check($"deleting from map '{Name}'", rc);
            return true;
        }
    }

    /// <summary>Every key the map holds (BPF_MAP_GET_NEXT_KEY from the start).</summary>
    public List<byte[]> Keys()
    {
        var keys = new List<byte[]>();
        var next = new byte[KeySize];
        byte[]? current = null;
        while (true)
        {
            int rc;
            fixed (byte* n = next)
            fixed (byte* c = current)
                rc = Native.BpfMapGetNextKey(Fd.Value, current == null ? null : c, n);
            if (rc == -2) return keys;
            BpfException.Check($"listing the keys of map '{Name}'", rc);
            current = (byte[])next.Clone();
            keys.Add(current);
        }
    }

    /// <summary>Sum of a per-CPU array slot made of u64 fields (e.g. packets, bytes).</summary>
    public ulong[] SumPerCpu(uint index)
    {
        Span<byte> key = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(key, index);
        var buf = new byte[LookupSize];
        var fields = ValueSize / 8;
        var sums = new ulong[fields];
        if (!TryLookup(key, buf)) return sums;
        var stride = (ValueSize + 7) / 8 * 8;
        for (var cpu = 0; cpu < PossibleCpus; cpu++)
            for (var f = 0; f < fields; f++)
                sums[f] += BitConverter.ToUInt64(buf, cpu * stride + f * 8);
        return sums;
    }

    public void Pin(string path) => BpfException.Check($"pinning map '{Name}' at {path}", Native.BpfObjPin(Fd.Value, path));

    /// <summary>Opens a map pinned in bpffs; its type and sizes come from the kernel.</summary>
    public static BpfMap Open(string path)
    {
        var fd = new BpfFd(BpfException.Check($"opening pinned map {path}", Native.BpfObjGet(path)));
        try
        {
            var info = BpfInfo.Map(fd.Value);
            return new BpfMap(fd, info.Type, info.Name, info.KeySize, info.ValueSize, info.MaxEntries, info.Flags);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private void CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize) throw new ArgumentException($"map '{Name}' keys are {KeySize} bytes, got {key.Length}");
    }

    public void Dispose() => Fd.Dispose();
}
