using System.Runtime.InteropServices;

namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// P/Invoke into libbpf.so.1 (>= 1.4). libbpf 1.x returns -errno from every call that fails.
/// Option structs are declared with the explicit offsets of libbpf 1.4's headers; their sz field
/// tells libbpf which fields we know.
/// </summary>
internal static unsafe partial class Native
{
    private const string Lib = "libbpf.so.1";

    [LibraryImport(Lib, EntryPoint = "bpf_prog_load", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BpfProgLoad(int progType, string? name, string license, byte* insns, nuint insnCnt, ProgLoadOpts* opts);

    [LibraryImport(Lib, EntryPoint = "bpf_map_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BpfMapCreate(int mapType, string? name, uint keySize, uint valueSize, uint maxEntries, MapCreateOpts* opts);

    [LibraryImport(Lib, EntryPoint = "btf__new_empty")]
    internal static partial nint BtfNewEmpty();

    /// <summary>encoding: BTF_INT_SIGNED 1, BTF_INT_CHAR 2, BTF_INT_BOOL 4 (0: unsigned). Returns the type id or -errno.</summary>
    [LibraryImport(Lib, EntryPoint = "btf__add_int", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddInt(nint btf, string name, int byteSize, int encoding);

    [LibraryImport(Lib, EntryPoint = "btf__add_struct", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddStruct(nint btf, string name, uint byteSize);

    /// <summary>Adds a member to the struct added last.</summary>
    [LibraryImport(Lib, EntryPoint = "btf__add_field", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddField(nint btf, string name, int typeId, uint bitOffset, uint bitSize);

    [LibraryImport(Lib, EntryPoint = "btf__add_array")]
    internal static partial int BtfAddArray(nint btf, int indexTypeId, int elemTypeId, uint nrElems);

    [LibraryImport(Lib, EntryPoint = "btf__add_ptr")]
    internal static partial int BtfAddPtr(nint btf, int refTypeId);

    /// <summary>A FUNC_PROTO returning <paramref name="retTypeId"/>; its parameters follow with <see cref="BtfAddFuncParam"/>.</summary>
    [LibraryImport(Lib, EntryPoint = "btf__add_func_proto")]
    internal static partial int BtfAddFuncProto(nint btf, int retTypeId);

    [LibraryImport(Lib, EntryPoint = "btf__add_func_param", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddFuncParam(nint btf, string name, int typeId);

    /// <summary>linkage: BTF_FUNC_STATIC 0, BTF_FUNC_GLOBAL 1.</summary>
    [LibraryImport(Lib, EntryPoint = "btf__add_func", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddFunc(nint btf, string name, int linkage, int protoTypeId);

    /// <summary>A DECL_TAG on parameter <paramref name="componentIdx"/> of FUNC <paramref name="refTypeId"/> (-1: the function).</summary>
    [LibraryImport(Lib, EntryPoint = "btf__add_decl_tag", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfAddDeclTag(nint btf, string value, int refTypeId, int componentIdx);

    [LibraryImport(Lib, EntryPoint = "btf__load_into_kernel")]
    internal static partial int BtfLoadIntoKernel(nint btf);

    [LibraryImport(Lib, EntryPoint = "btf__fd")]
    internal static partial int BtfFd(nint btf);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    internal static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    internal static partial int Munmap(void* addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "bpf_map_update_elem")]
    internal static partial int BpfMapUpdateElem(int fd, void* key, void* value, ulong flags);

    /// <summary>libbpf's bpf_map_update_batch: keys and values laid end to end; count in, how many were written out.</summary>
    [LibraryImport(Lib, EntryPoint = "bpf_map_update_batch")]
    internal static partial int BpfMapUpdateBatch(int fd, void* keys, void* values, uint* count, void* opts);

    [LibraryImport(Lib, EntryPoint = "bpf_map_lookup_elem")]
    internal static partial int BpfMapLookupElem(int fd, void* key, void* value);

    [LibraryImport(Lib, EntryPoint = "bpf_map_lookup_elem_flags")]
    internal static partial int BpfMapLookupElemFlags(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Lib, EntryPoint = "bpf_map_delete_elem")]
    internal static partial int BpfMapDeleteElem(int fd, void* key);

    [LibraryImport(Lib, EntryPoint = "bpf_map_get_next_key")]
    internal static partial int BpfMapGetNextKey(int fd, void* key, void* nextKey);

    [LibraryImport(Lib, EntryPoint = "bpf_prog_test_run_opts")]
    internal static partial int BpfProgTestRunOpts(int progFd, TestRunOpts* opts);

    [LibraryImport(Lib, EntryPoint = "bpf_link_create")]
    internal static partial int BpfLinkCreate(int progFd, int targetFd, int attachType, LinkCreateOpts* opts);

    [LibraryImport(Lib, EntryPoint = "bpf_link_update")]
    internal static partial int BpfLinkUpdate(int linkFd, int newProgFd, LinkUpdateOpts* opts);

    [LibraryImport(Lib, EntryPoint = "bpf_obj_pin", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BpfObjPin(int fd, string path);

    [LibraryImport(Lib, EntryPoint = "bpf_obj_get", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BpfObjGet(string path);

    [LibraryImport(Lib, EntryPoint = "bpf_prog_get_info_by_fd")]
    internal static partial int BpfProgGetInfoByFd(int fd, byte* info, uint* len);

    [LibraryImport(Lib, EntryPoint = "bpf_link_get_info_by_fd")]
    internal static partial int BpfLinkGetInfoByFd(int fd, byte* info, uint* len);

    [LibraryImport(Lib, EntryPoint = "bpf_map_get_info_by_fd")]
    internal static partial int BpfMapGetInfoByFd(int fd, byte* info, uint* len);

    [LibraryImport(Lib, EntryPoint = "bpf_prog_get_fd_by_id")]
    internal static partial int BpfProgGetFdById(uint id);

    /// <summary>BPF_ENABLE_STATS: returns an fd that keeps the given statistics on while it is open.</summary>
    [LibraryImport(Lib, EntryPoint = "bpf_enable_stats")]
    internal static partial int BpfEnableStats(int type);

    [LibraryImport(Lib, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int NumPossibleCpus();

    [LibraryImport(Lib, EntryPoint = "btf__load_vmlinux_btf")]
    internal static partial nint BtfLoadVmlinux();

    [LibraryImport(Lib, EntryPoint = "btf__find_by_name_kind", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfFindByNameKind(nint btf, string name, uint kind);

    [LibraryImport(Lib, EntryPoint = "btf__type_by_id")]
    internal static partial nint BtfTypeById(nint btf, uint id);

    [LibraryImport(Lib, EntryPoint = "btf__name_by_offset")]
    internal static partial nint BtfNameByOffset(nint btf, uint offset);

    [LibraryImport(Lib, EntryPoint = "btf__free")]
    internal static partial void BtfFree(nint btf);

    /// <summary>struct ring_buffer *ring_buffer__new(int map_fd, ring_buffer_sample_fn cb, void *ctx, const struct ring_buffer_opts *opts).</summary>
    [LibraryImport(Lib, EntryPoint = "ring_buffer__new", SetLastError = true)]
    internal static partial nint RingBufferNew(int mapFd, delegate* unmanaged<nint, byte*, nuint, int> sampleCb, nint ctx, void* opts);

    /// <summary>Waits up to timeoutMs for data and calls the callback per record; returns records consumed or -errno.</summary>
    [LibraryImport(Lib, EntryPoint = "ring_buffer__poll")]
    internal static partial int RingBufferPoll(nint rb, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "ring_buffer__consume")]
    internal static partial int RingBufferConsume(nint rb);

    [LibraryImport(Lib, EntryPoint = "ring_buffer__free")]
    internal static partial void RingBufferFree(nint rb);

    [LibraryImport("libc", EntryPoint = "dup")]
    internal static partial int Dup(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "if_nametoindex", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint IfNameToIndex(string name);

    [StructLayout(LayoutKind.Explicit, Size = 112)]
    internal struct ProgLoadOpts
    {
        [FieldOffset(0)] public nuint Sz;
        [FieldOffset(12)] public int ExpectedAttachType;
        [FieldOffset(16)] public uint ProgBtfFd;
        [FieldOffset(20)] public uint ProgFlags;
        [FieldOffset(48)] public int* FdArray;
        /// <summary>struct bpf_func_info {u32 insn_off; u32 type_id;} per function, by instruction offset.</summary>
        [FieldOffset(56)] public void* FuncInfo;
        [FieldOffset(64)] public uint FuncInfoCnt;
        [FieldOffset(68)] public uint FuncInfoRecSize;
        [FieldOffset(88)] public uint LogLevel;
        [FieldOffset(92)] public uint LogSize;
        [FieldOffset(96)] public byte* LogBuf;
        [FieldOffset(104)] public uint LogTrueSize;
    }

    [StructLayout(LayoutKind.Explicit, Size = 56)]
    internal struct MapCreateOpts
    {
        [FieldOffset(0)] public nuint Sz;
        [FieldOffset(8)] public uint BtfFd;
        [FieldOffset(12)] public uint BtfKeyTypeId;
        [FieldOffset(16)] public uint BtfValueTypeId;
        [FieldOffset(24)] public uint InnerMapFd;
        [FieldOffset(28)] public uint MapFlags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 80)]
    internal struct TestRunOpts
    {
        [FieldOffset(0)] public nuint Sz;
        [FieldOffset(8)] public void* DataIn;
        [FieldOffset(16)] public void* DataOut;
        [FieldOffset(24)] public uint DataSizeIn;
        [FieldOffset(28)] public uint DataSizeOut;
        [FieldOffset(32)] public void* CtxIn;
        [FieldOffset(40)] public void* CtxOut;
        [FieldOffset(48)] public uint CtxSizeIn;
        [FieldOffset(52)] public uint CtxSizeOut;
        [FieldOffset(56)] public uint Retval;
        [FieldOffset(60)] public int Repeat;
        [FieldOffset(64)] public uint Duration;
        [FieldOffset(68)] public uint Flags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 80)]
    internal struct LinkCreateOpts
    {
        [FieldOffset(0)] public nuint Sz;
        [FieldOffset(8)] public uint Flags;
        // netfilter variant of the union
        [FieldOffset(32)] public uint NfPf;
        [FieldOffset(36)] public uint NfHooknum;
        [FieldOffset(40)] public int NfPriority;
        [FieldOffset(44)] public uint NfFlags;
        // tcx variant of the union
        [FieldOffset(32)] public uint TcxRelativeFd;
        [FieldOffset(36)] public uint TcxRelativeId;
        [FieldOffset(40)] public ulong TcxExpectedRevision;
    }

    [StructLayout(LayoutKind.Explicit, Size = 24)]
    internal struct LinkUpdateOpts
    {
        [FieldOffset(0)] public nuint Sz;
        [FieldOffset(8)] public uint Flags;
        [FieldOffset(12)] public uint OldProgFd;
        [FieldOffset(16)] public uint OldMapFd;
    }
}
