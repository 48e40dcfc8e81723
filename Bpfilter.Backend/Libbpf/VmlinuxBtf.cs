namespace Bpfilter.Backend.Libbpf;

/// <summary>Looks up kernel function BTF ids (for kfunc calls) in the running kernel's vmlinux BTF.</summary>
public static class VmlinuxBtf
{
    private const uint KindFunc = 12;
    private static readonly Dictionary<string, int> Cache = new();

    public static int FuncId(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(name, out var id)) return id;
            var btf = Native.BtfLoadVmlinux();
            if (btf == 0) throw new BpfException("loading vmlinux BTF", 2, "is /sys/kernel/btf/vmlinux there?");
            try
            {
                id = Native.BtfFindByNameKind(btf, name, KindFunc);
                if (id <= 0) throw new BpfException($"finding kernel function '{name}' in vmlinux BTF", -id);
            }
            finally { Native.BtfFree(btf); }
            return Cache[name] = id;
        }
    }
}
