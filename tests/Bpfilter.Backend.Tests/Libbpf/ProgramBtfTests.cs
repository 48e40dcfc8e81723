using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Testing;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Libbpf;

/// <summary>
/// A program with a global function (ProgramBtf): the kernel loads it with its BTF and func_info, checks the
/// function once from its signature (ctx, a non-null pointer to the caller's frame), and the function reads the
/// caller's stack through that pointer and the packet through the context.
/// </summary>
public class ProgramBtfTests
{
    const int Frame = 64;

    /// <summary>main stores 7 at fp-8 and calls f(ctx, fp-64) <paramref name="calls"/> times; f returns frame[-8] - 5 (XDP_PASS) for IPv4, else XDP_DROP.</summary>
    static (byte[] Code, ProgramFunction[] Functions) Program(int calls)
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Reg(R6, R1), Asm.StW(R10, -8, 7));
        for (var i = 0; i < calls; i++)
            asm.Emit(Asm.Mov64Reg(R1, R6), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -Frame), Asm.CallLocal("f"), Asm.JneImm(R0, 2, "out"));
        asm.Label("out").Emit(Asm.Exit());
        asm.Label("f").Emit(
            Asm.Mov64Reg(R8, R2), Asm.Add64Imm(R8, Frame), // the caller's frame pointer, as a pointer into the frame struct
            Asm.LdxW(R0, R8, -8),
            Asm.LdxW(R2, R1, 0), Asm.LdxW(R3, R1, 4),
            Asm.Mov64Reg(R4, R2), Asm.Add64Imm(R4, 14), Asm.JgtReg(R4, R3, "fdrop"),
            Asm.LdxB(R5, R2, 12), Asm.JneImm(R5, 0x08, "fdrop"),
            Asm.Add64Imm(R0, -5), Asm.Exit());
        asm.Label("fdrop").Emit(Asm.Mov64Imm(R0, 1), Asm.Exit());
        var insns = asm.Build();
        var f = insns.TakeWhile(i => !i.Labels.Contains("f")).Sum(i => i.Slots);
        return (Linker.Link(insns), [new(0, true), new(f, true)]);
    }

    [Fact]
    public void AGlobalFunctionReadsTheCallersFrameAndThePacket()
    {
        var (code, functions) = Program(1);
        using var btf = ProgramBtf.Create(BpfProgType.Xdp, Frame, functions);
        using var p = BpfProgram.Load(BpfProgType.Xdp, "btf_global", code, BpfAttachType.Xdp, btf: btf, functions: functions);
        Assert.Equal(2U, p.TestRun(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 2, 0x02)).ReturnValue);
        Assert.Equal(1U, p.TestRun(PacketBuilder.Ether().Ipv6("2001:db8::1", "2001:db8::2").Tcp(1, 2, 0x02)).ReturnValue);
    }

    [Fact]
    public void TheVerifierChecksAGlobalFunctionOnceHoweverOftenItIsCalled()
    {
        uint Verified(int calls, bool global)
        {
            var (code, functions) = Program(calls);
            functions = [functions[0], functions[1] with { Global = global }];
            using var btf = ProgramBtf.Create(BpfProgType.Xdp, Frame, functions);
            using var p = BpfProgram.Load(BpfProgType.Xdp, "btf_calls", code, BpfAttachType.Xdp, btf: btf, functions: functions);
            Assert.Equal(2U, p.TestRun(PacketBuilder.Ether().Ipv4("198.18.0.1", "198.18.0.2").Tcp(1, 2, 0x02)).ReturnValue);
            return BpfInfo.VerifiedInstructions(p.Fd.Value)!.Value;
        }
        // each call site adds its own 5 instructions and its return's branch, not the function's 12 again
        var (one, fifty) = (Verified(1, global: true), Verified(50, global: true));
        Assert.True(fifty - one <= 49 * 7, $"global: {one} verified for 1 call, {fifty} for 50");
        var (staticOne, staticFifty) = (Verified(1, global: false), Verified(50, global: false));
        Assert.True(staticFifty - staticOne >= 49 * 12, $"static: {staticOne} verified for 1 call, {staticFifty} for 50");
    }
}
