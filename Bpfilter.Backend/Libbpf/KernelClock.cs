using System.Buffers.Binary;
using Bpfilter.Backend.Bpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Libbpf;

/// <summary>
/// The kernel's jiffies, the clock nf_tables keeps set element expiry on (an element expires when
/// <c>time_after_eq64(jiffies64, expiration)</c>). Read exactly through a small XDP
/// program calling bpf_jiffies64 under BPF_PROG_TEST_RUN; HZ comes from the kernel's config (<see cref="KernelHz"/>).
/// Milliseconds on this clock are jiffies × (1000 / HZ): exact only when HZ divides 1000, so the
/// clock is <see cref="Available"/> only then (100, 200, 250, 500, 1000).
/// </summary>
public static class KernelClock
{
    static readonly Lazy<BpfProgram?> Reader = new(LoadReader);

    /// <summary>CONFIG_HZ, or null when the kernel's config cannot be read.</summary>
    public static int? Hz => KernelHz.Hz;

    /// <summary>Milliseconds per jiffy (1000 / HZ), or null when that is not a whole number.</summary>
    public static int? TickMs => KernelHz.TickMs;

    /// <summary>True when jiffies can be read and converted to milliseconds exactly.</summary>
    public static bool Available => TickMs != null && Reader.Value != null;

    /// <summary>get_jiffies_64() now.</summary>
    public static ulong Jiffies64()
    {
        var prog = Reader.Value ?? throw new InvalidOperationException("the kernel's jiffies cannot be read (bpf_jiffies64 did not load)");
        var result = prog.TestRun(new byte[64]);
        return BinaryPrimitives.ReadUInt64LittleEndian(result.DataOut);
    }

    /// <summary>The engine's clock: jiffies in milliseconds (jiffies64_to_msecs).</summary>
    public static long NowMs() => (long)Jiffies64() * (TickMs ?? throw new InvalidOperationException("HZ does not divide 1000"));

    /// <summary>Milliseconds on this clock back to jiffies (exact: the clock only yields multiples of a tick).</summary>
    public static ulong ToJiffies(long ms) => (ulong)Math.Max(0, ms) / (ulong)(TickMs ?? throw new InvalidOperationException("HZ does not divide 1000"));

    static BpfProgram? LoadReader()
    {
        // r6 = data; if data + 8 > data_end: pass; *(u64 *)data = bpf_jiffies64()
        var insns = new List<Instruction>
        {
            Asm.LdxW(R6, R1, 0), Asm.LdxW(R2, R1, 4), Asm.Mov64Reg(R3, R6), Asm.Add64Imm(R3, 8),
            Asm.JgtReg(R3, R2, "out"), Asm.Call(HelperFunc.Jiffies64), Asm.StxDW(R6, 0, R0),
        };
        var asm = new Assembler();
        foreach (var i in insns) asm.Emit(i);
        asm.Label("out");
        asm.Emit(Asm.Mov64Imm(R0, 2), Asm.Exit());
        try
        {
            return BpfProgram.Load(BpfProgType.Xdp, "bf_jiffies", Linker.Link(asm.Build()), BpfAttachType.Xdp);
        }
        catch (Exception e) when (e is BpfException or DllNotFoundException or EntryPointNotFoundException)
        {
            return null; // not root, no BPF or no libbpf (bpfilterd --no-enforce): timeout sets then stay out of BPF
        }
    }
}
