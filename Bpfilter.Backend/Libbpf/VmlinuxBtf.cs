using System.Runtime.InteropServices;

namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// The running kernel's BTF: kernel function ids (for kfunc calls) and struct member offsets (for
/// reads through BTF pointers such as a netfilter program's skb), looked up once and cached.
/// </summary>
public static unsafe class VmlinuxBtf
{
    private const uint KindInt = 1, KindPtr = 2, KindArray = 3, KindStruct = 4, KindUnion = 5, KindEnum = 6, KindTypedef = 8, KindVolatile = 9, KindConst = 10, KindFunc = 12;
    private static readonly Dictionary<string, int> Cache = new();
    private static nint _btf;

    private static nint Btf
    {
        get
        {
            if (_btf != 0) return _btf;
            var btf = Native.BtfLoadVmlinux();
            if (btf == 0) throw new BpfException("loading vmlinux BTF", Marshal.GetLastPInvokeError() is var e && e > 0 ? e : 2,
                "is /sys/kernel/btf/vmlinux there?");
            return _btf = btf;
        }
    }

    public static int FuncId(string name)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue("f:" + name, out var id)) return id;
            id = Native.BtfFindByNameKind(Btf, name, KindFunc);
            if (id <= 0) throw new BpfException($"finding kernel function '{name}' in vmlinux BTF", -id);
            return Cache["f:" + name] = id;
        }
    }

    /// <summary>
    /// Type id of a kernel struct by its exact name (e.g. for bpf_rdonly_cast). libbpf's CO-RE matching
    /// drops a ___suffix, so it cannot tell nf_conn from nf_conn___init; an exact lookup can.
    /// </summary>
    public static int StructId(string structName)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue("s:" + structName, out var id)) return id;
            id = Native.BtfFindByNameKind(Btf, structName, KindStruct);
            if (id <= 0) throw new BpfException($"finding struct {structName} in vmlinux BTF", -id);
            return Cache["s:" + structName] = id;
        }
    }

    /// <summary>The value of a kernel enum's enumerator, e.g. <c>EnumValue("nf_ct_ext_id", "NF_CT_EXT_LABELS")</c>.</summary>
    public static int EnumValue(string enumName, string enumerator)
    {
        lock (Cache)
        {
            var key = $"e:{enumName}.{enumerator}";
            if (Cache.TryGetValue(key, out var cached)) return cached;
            var id = Native.BtfFindByNameKind(Btf, enumName, KindEnum);
            if (id <= 0) throw new BpfException($"finding enum {enumName} in vmlinux BTF", -id);
            var t = (uint*)Native.BtfTypeById(Btf, (uint)id);
            var entries = t + 3;
            for (var i = 0; i < (int)(t[1] & 0xffff); i++)
                if (Marshal.PtrToStringUTF8(Native.BtfNameByOffset(Btf, entries[2 * i])) == enumerator)
                    return Cache[key] = (int)entries[2 * i + 1];
            throw new BpfException($"finding {enumName}.{enumerator} in vmlinux BTF", 2);
        }
    }

    /// <summary>Size in bytes of a kernel struct.</summary>
    public static int StructSize(string structName)
    {
        lock (Cache)
        {
            var id = Native.BtfFindByNameKind(Btf, structName, KindStruct);
            if (id <= 0) throw new BpfException($"finding struct {structName} in vmlinux BTF", -id);
            return (int)((uint*)Native.BtfTypeById(Btf, (uint)id))[2];
        }
    }

    /// <summary>
    /// Bit offset and bit size (0 unless a bitfield) of a member of a kernel struct, searching anonymous
    /// nested structs and unions.
    /// </summary>
    public static (int BitOffset, int BitSize) Member(string structName, string member)
    {
        lock (Cache)
        {
            var key = $"m:{structName}.{member}";
            if (Cache.TryGetValue(key, out var packed)) return (packed >> 8, packed & 0xff);
            var id = Native.BtfFindByNameKind(Btf, structName, KindStruct);
            if (id <= 0) throw new BpfException($"finding struct {structName} in vmlinux BTF", -id);
            var found = Find((uint)id, member, 0) ?? throw new BpfException($"finding {structName}.{member} in vmlinux BTF", 2);
            Cache[key] = found.BitOffset << 8 | found.BitSize;
            return found;
        }
    }

    /// <summary>Whether a kernel struct exists and has a member of that name (searching anonymous nested structs and unions).</summary>
    public static bool HasMember(string structName, string member)
    {
        lock (Cache)
        {
            var id = Native.BtfFindByNameKind(Btf, structName, KindStruct);
            return id > 0 && Find((uint)id, member, 0) is not null;
        }
    }

    /// <summary>
    /// Byte offset of a member reached through named members and array elements, e.g.
    /// <c>MemberPath("nf_conn", "tuplehash[1].tuple.dst.u3")</c> (anonymous nested structs and unions are searched).
    /// </summary>
    public static int MemberPath(string structName, string path)
    {
        lock (Cache)
        {
            var key = $"p:{structName}.{path}";
            if (Cache.TryGetValue(key, out var cached)) return cached;
            var id = Native.BtfFindByNameKind(Btf, structName, KindStruct);
            if (id <= 0) throw new BpfException($"finding struct {structName} in vmlinux BTF", -id);
            var type = (uint)id;
            var bits = 0;
            foreach (var segment in path.Split('.'))
            {
                var open = segment.IndexOf('[');
                var name = open < 0 ? segment : segment[..open];
                var (at, _, memberType) = FindTyped(type, name, 0)
                    ?? throw new BpfException($"finding {structName}.{path} in vmlinux BTF", 2);
                bits += at;
                type = Resolve(memberType);
                if (open < 0) continue;
                var index = int.Parse(segment[(open + 1)..^1], System.Globalization.CultureInfo.InvariantCulture);
                var t = (uint*)Native.BtfTypeById(Btf, type);
                if ((t[1] >> 24 & 0x1f) != KindArray || index >= (int)t[5])
                    throw new BpfException($"{structName}.{path}: {name} is not an array of more than {index} elements", 22);
                type = Resolve(t[3]);
                bits += index * (int)((uint*)Native.BtfTypeById(Btf, type))[2] * 8;
            }
            return Cache[key] = bits / 8;
        }
    }

    private static (int BitOffset, int BitSize)? Find(uint typeId, string member, int baseBits) =>
        FindTyped(typeId, member, baseBits) is { } f ? (f.BitOffset, f.BitSize) : null;

    private static (int BitOffset, int BitSize, uint Type)? FindTyped(uint typeId, string member, int baseBits)
    {
        var t = (uint*)Native.BtfTypeById(Btf, typeId);
        var info = t[1];
        var kind = info >> 24 & 0x1f;
        if (kind != KindStruct && kind != KindUnion) return null;
        var vlen = (int)(info & 0xffff);
        var kflag = info >> 31 == 1;
        var members = t + 3;
        for (var i = 0; i < vlen; i++)
        {
            var m = members + i * 3;
            var nameOff = m[0];
            var offset = m[2];
            var bitOffset = kflag ? (int)(offset & 0xffffff) : (int)offset;
            var bitSize = kflag ? (int)(offset >> 24) : 0;
            if (nameOff == 0)
            {
                var inner = FindTyped(Resolve(m[1]), member, baseBits + bitOffset);
                if (inner is not null) return inner;
                continue;
            }
            var name = Marshal.PtrToStringUTF8(Native.BtfNameByOffset(Btf, nameOff));
            if (name == member) return (baseBits + bitOffset, bitSize, m[1]);
        }
        return null;
    }

    private static uint Resolve(uint typeId)
    {
        while (true)
        {
            var t = (uint*)Native.BtfTypeById(Btf, typeId);
            var kind = t[1] >> 24 & 0x1f;
            if (kind is KindTypedef or KindVolatile or KindConst) { typeId = t[2]; continue; }
            return typeId;
        }
    }
}
