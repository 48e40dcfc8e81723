using Bpfilter.Backend.Libbpf;

namespace Bpfilter.Backend.Loader;

/// <summary>
/// A map whose values hold a struct bpf_spin_lock, which the verifier finds only through the map's BTF: the
/// value is described as a struct of the value's size with one member, the lock, at its offset (the other
/// bytes need no type). User space writes whole values and never touches the lock (the kernel keeps it).
/// </summary>
public static class SpinLockMap
{
    public static BpfMap Create(BpfMapType type, string name, int keySize, int valueSize, int maxEntries, int lockOffset,
        uint flags = 0, BpfMap? inner = null)
    {
        if (lockOffset % 4 != 0 || lockOffset + 4 > valueSize)
            throw new ArgumentOutOfRangeException(nameof(lockOffset), $"a bpf_spin_lock at {lockOffset} in a {valueSize}-byte value");
        var btf = Native.BtfNewEmpty();
        if (btf == 0) throw new BpfException($"creating BTF for map '{name}'", 12);
        try
        {
            int Check(string what, int rc) => rc < 0 ? throw new BpfException($"BTF for map '{name}': {what}", -rc) : rc;
            var u32 = Check("u32", Native.BtfAddInt(btf, "unsigned int", 4, 0));
            var lockType = Check("struct bpf_spin_lock", Native.BtfAddStruct(btf, "bpf_spin_lock", 4));
            Check("bpf_spin_lock.val", Native.BtfAddField(btf, "val", u32, 0, 0));
            var value = Check("value", Native.BtfAddStruct(btf, "value", (uint)valueSize));
            Check("lock", Native.BtfAddField(btf, "lock", lockType, (uint)lockOffset * 8, 0));
            // the key's type must be the key's size (the kernel checks it): a u32, else bytes without members
            var key = keySize == 4 ? u32 : Check("key", Native.BtfAddStruct(btf, "key", (uint)keySize));
            Check("loading it", Native.BtfLoadIntoKernel(btf));
            // the map keeps its own reference to the BTF: the object is freed right after
            return BpfMap.Create(type, name, keySize, valueSize, maxEntries, flags, inner, btf: (Native.BtfFd(btf), (uint)key, (uint)value));
        }
        finally
        {
            Native.BtfFree(btf);
        }
    }
}
