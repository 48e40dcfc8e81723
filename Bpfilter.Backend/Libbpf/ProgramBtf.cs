using System.Collections.Immutable;

namespace Bpfilter.Backend.Libbpf;

/// <summary>A function of a program as BTF describes it: where it starts (in 8-byte instruction slots) and whether it is global.</summary>
/// <param name="Offset">Its first instruction's slot (the main program's is 0).</param>
/// <param name="Global">BTF_FUNC_GLOBAL: the verifier checks it once, on its own, from its BTF signature; else static (checked at every call).</param>
public readonly record struct ProgramFunction(int Offset, bool Global);

/// <summary>
/// The BTF a program with global functions is loaded with (prog_btf_fd, func_info): int, the program type's context
/// struct, the frame struct the callers pass, and one FUNC per function. The main program is
/// <c>int main(ctx *)</c>; every other function is <c>int f(ctx *, struct bf_frame *frame)</c>, frame tagged
/// <c>arg:nonnull</c>, so a global one starts with R1 = the context and R2 = a non-null pointer to
/// <see cref="FrameSize"/> bytes of its caller's stack (the verifier's PTR_TO_MEM). The context struct is empty:
/// the verifier matches it by name only.
/// </summary>
public sealed class ProgramBtf : IDisposable
{
    private ProgramBtf(BpfFd fd, ImmutableArray<int> funcTypes) { Fd = fd; FuncTypes = funcTypes; }

    /// <summary>The loaded BTF object.</summary>
    public BpfFd Fd { get; }

    /// <summary>The FUNC type id of every function, in the order they were given.</summary>
    public ImmutableArray<int> FuncTypes { get; }

    /// <summary>Size of struct bf_frame.</summary>
    public int FrameSize { get; private init; }

    /// <summary>The context struct's name the verifier expects for a program type.</summary>
    public static string ContextName(BpfProgType type) => type switch
    {
        BpfProgType.Xdp => "xdp_md",
        BpfProgType.SchedCls => "__sk_buff",
        BpfProgType.Netfilter => "bpf_nf_ctx",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no context struct known"),
    };

    /// <summary>Builds and loads the BTF for <paramref name="functions"/> (the first is the main program).</summary>
    public static ProgramBtf Create(BpfProgType type, int frameSize, IReadOnlyList<ProgramFunction> functions)
    {
        if (functions.Count == 0 || functions[0].Offset != 0) throw new ArgumentException("the main program comes first, at offset 0", nameof(functions));
        if (frameSize <= 0 || frameSize % 8 != 0) throw new ArgumentOutOfRangeException(nameof(frameSize), frameSize, "a positive multiple of 8");
        var btf = Native.BtfNewEmpty();
        if (btf == 0) throw new BpfException("creating a program's BTF", 12);
        try
        {
            int Check(string what, int rc) => rc < 0 ? throw new BpfException($"program BTF: {what}", -rc) : rc;
            var i32 = Check("int", Native.BtfAddInt(btf, "int", 4, 1));
            var u8 = Check("unsigned char", Native.BtfAddInt(btf, "unsigned char", 1, 0));
            var ctx = Check("context struct", Native.BtfAddStruct(btf, ContextName(type), 0));
            var ctxPtr = Check("context pointer", Native.BtfAddPtr(btf, ctx));
            var bytes = Check("frame bytes", Native.BtfAddArray(btf, i32, u8, (uint)frameSize));
            var frame = Check("struct bf_frame", Native.BtfAddStruct(btf, "bf_frame", (uint)frameSize));
            Check("bf_frame.bytes", Native.BtfAddField(btf, "bytes", bytes, 0, 0));
            var framePtr = Check("frame pointer", Native.BtfAddPtr(btf, frame));
            var mainProto = Check("main's prototype", Native.BtfAddFuncProto(btf, i32));
            Check("main's ctx", Native.BtfAddFuncParam(btf, "ctx", ctxPtr));
            var subProto = Check("a function's prototype", Native.BtfAddFuncProto(btf, i32));
            Check("ctx", Native.BtfAddFuncParam(btf, "ctx", ctxPtr));
            Check("frame", Native.BtfAddFuncParam(btf, "frame", framePtr));
            var funcs = ImmutableArray.CreateBuilder<int>(functions.Count);
            funcs.Add(Check("main", Native.BtfAddFunc(btf, "main", 1, mainProto)));
            for (var i = 1; i < functions.Count; i++)
            {
                var f = Check($"function {i}", Native.BtfAddFunc(btf, $"chain{i}", functions[i].Global ? 1 : 0, subProto));
                // the callers pass their own frame: never null, so the function needs no check before using it
                Check($"function {i}'s frame tag", Native.BtfAddDeclTag(btf, "arg:nonnull", f, 1));
                funcs.Add(f);
            }
            Check("loading it", Native.BtfLoadIntoKernel(btf));
            // the fd stays open after the libbpf object is freed: dup it so the object's free cannot close it
            var fd = Check("duplicating its fd", Dup(Native.BtfFd(btf)));
            return new ProgramBtf(new BpfFd(fd), funcs.MoveToImmutable()) { FrameSize = frameSize };
        }
        finally
        {
            Native.BtfFree(btf);
        }
    }

    /// <summary>func_info records (struct bpf_func_info) for <paramref name="functions"/>, 8 bytes each.</summary>
    public byte[] FuncInfo(IReadOnlyList<ProgramFunction> functions)
    {
        if (functions.Count != FuncTypes.Length) throw new ArgumentException("one record per function this BTF describes", nameof(functions));
        var info = new byte[functions.Count * FuncInfoRecordSize];
        for (var i = 0; i < functions.Count; i++)
        {
            BitConverter.TryWriteBytes(info.AsSpan(i * 8), (uint)functions[i].Offset);
            BitConverter.TryWriteBytes(info.AsSpan(i * 8 + 4), (uint)FuncTypes[i]);
        }
        return info;
    }

    public const int FuncInfoRecordSize = 8;

    private static int Dup(int fd) => fd < 0 ? fd : Native.Dup(fd) is var d and >= 0 ? d : -9;

    public void Dispose() => Fd.Dispose();
}
