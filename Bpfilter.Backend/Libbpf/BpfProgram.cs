using System.Text;

namespace Bpfilter.Backend.Libbpf;

public enum BpfProgType { SocketFilter = 1, SchedCls = 3, Xdp = 6, Netfilter = 32 }

/// <summary>enum bpf_attach_type values used here (newer than the distribution's uapi header).</summary>
public enum BpfAttachType { None = 0, Xdp = 37, Netfilter = 45, TcxIngress = 46, TcxEgress = 47 }

/// <summary>What BPF_PROG_TEST_RUN returned; ContextOut: the context after the run (as long as the one passed in, empty without one).</summary>
public readonly record struct TestRunResult(uint ReturnValue, uint DurationNs, byte[] DataOut, byte[]? ContextOut = null);

/// <summary>A loaded BPF program.</summary>
public sealed unsafe class BpfProgram : IDisposable
{
    /// <summary>Verifier log buffer: large enough for big chains (the kernel caps it at 16M-1 for level 1).</summary>
    public const int LogSize = 4 << 20;

    private BpfProgram(BpfFd fd, string name, BpfProgType type) { Fd = fd; Name = name; Type = type; }

    public BpfFd Fd { get; }
    public string Name { get; }
    public BpfProgType Type { get; }

    /// <summary>
    /// Loads marshalled instructions. A verifier rejection raises <see cref="BpfVerifierException"/>
    /// with the whole log (the load is retried with log level 1 so a successful load costs no log).
    /// With <paramref name="functions"/> (the main program and its subprograms, by offset) it is loaded with
    /// <paramref name="btf"/> and func_info, so the global ones are verified once each.
    /// </summary>
    public static BpfProgram Load(BpfProgType type, string name, ReadOnlySpan<byte> insns,
        BpfAttachType expectedAttachType = BpfAttachType.None, string license = "GPL",
        ProgramBtf? btf = null, IReadOnlyList<ProgramFunction>? functions = null)
    {
        if (insns.Length == 0 || insns.Length % 8 != 0) throw new ArgumentException("instructions must be a non-empty multiple of 8 bytes");
        var kname = BpfMap.KernelName(name);
        var opts = new Native.ProgLoadOpts
        {
            Sz = (nuint)sizeof(Native.ProgLoadOpts),
            ExpectedAttachType = (int)expectedAttachType,
        };
        if ((btf == null) != (functions == null)) throw new ArgumentException("BTF and its functions go together");
        var funcInfo = btf?.FuncInfo(functions!) ?? [];
        int fd;
        fixed (byte* p = insns)
        fixed (byte* fi = funcInfo)
        {
            if (btf != null)
            {
                opts.ProgBtfFd = (uint)btf.Fd.Value;
                opts.FuncInfo = fi;
                opts.FuncInfoCnt = (uint)functions!.Count;
                opts.FuncInfoRecSize = ProgramBtf.FuncInfoRecordSize;
            }
            fd = Native.BpfProgLoad((int)type, kname, license, p, (nuint)(insns.Length / 8), &opts);
            if (fd < 0 && fd != -(int)Errno.EPERM)
            {
                var first = -fd;
                var log = new byte[LogSize];
                fixed (byte* l = log)
                {
                    opts.LogBuf = l;
                    opts.LogSize = (uint)log.Length;
                    opts.LogLevel = 1;
                    fd = Native.BpfProgLoad((int)type, kname, license, p, (nuint)(insns.Length / 8), &opts);
                }
                var len = Array.IndexOf(log, (byte)0);
                if (fd >= 0) Native.Close(fd); // the first attempt decides; a retry only collects the log
                // The retry's own errno may be ENOSPC (log truncated): report the first attempt's errno.
                throw new BpfVerifierException(name, first, Encoding.UTF8.GetString(log, 0, len < 0 ? log.Length : len));
            }
        }
        BpfException.Check($"loading program '{name}'", fd);
        return new BpfProgram(new BpfFd(fd), name, type);
    }

    /// <summary>BPF_PROG_TEST_RUN: runs the program over <paramref name="data"/> (and ctx) <paramref name="repeat"/> times.</summary>
    public TestRunResult TestRun(ReadOnlySpan<byte> data, int repeat = 1, ReadOnlySpan<byte> ctx = default)
    {
        var output = new byte[Math.Max(data.Length + 256, 64)];
        var ctxOut = new byte[ctx.Length];
        fixed (byte* d = data)
        fixed (byte* o = output)
        fixed (byte* c = ctx)
        fixed (byte* co = ctxOut)
        {
            var opts = new Native.TestRunOpts
            {
                Sz = (nuint)sizeof(Native.TestRunOpts),
                DataIn = d,
                DataSizeIn = (uint)data.Length,
                DataOut = o,
                DataSizeOut = (uint)output.Length,
                CtxIn = ctx.IsEmpty ? null : c,
                CtxSizeIn = (uint)ctx.Length,
                CtxOut = ctx.IsEmpty ? null : co,
                CtxSizeOut = (uint)ctxOut.Length,
                Repeat = repeat,
            };
            BpfException.Check($"test-running program '{Name}'", Native.BpfProgTestRunOpts(Fd.Value, &opts));
            return new TestRunResult(opts.Retval, opts.Duration, output.AsSpan(0, (int)Math.Min(opts.DataSizeOut, (uint)output.Length)).ToArray(), ctxOut);
        }
    }

    public void Pin(string path) => BpfException.Check($"pinning program '{Name}' at {path}", Native.BpfObjPin(Fd.Value, path));

    /// <summary>Opens a program pinned in bpffs.</summary>
    public static BpfProgram Open(string path, BpfProgType type) =>
        new(new BpfFd(BpfException.Check($"opening pinned program {path}", Native.BpfObjGet(path))), Path.GetFileName(path), type);

    /// <summary>Opens a loaded program by its kernel id (as `explain` shows it); needs CAP_SYS_ADMIN.</summary>
    public static BpfProgram OpenById(uint id, BpfProgType type) =>
        new(new BpfFd(BpfException.Check($"opening program id {id}", Native.BpfProgGetFdById(id))), $"id {id}", type);

    /// <summary>The program's kernel id.</summary>
    public uint Id => BpfInfo.ProgramId(Fd.Value);

    public void Dispose() => Fd.Dispose();

    private enum Errno { EPERM = 1 }
}
