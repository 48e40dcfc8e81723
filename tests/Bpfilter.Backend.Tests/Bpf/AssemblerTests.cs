using Bpfilter.Backend.Bpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Bpf;

public class AssemblerTests
{
    private static Assembler Sample()
    {
        var asm = new Assembler();
        asm.Emit(Asm.LdxW(R2, R1, 0), Asm.LdxW(R3, R1, 4), Asm.Mov64Reg(R4, R2), Asm.Add64Imm(R4, 14));
        asm.Emit(Asm.JgtReg(R4, R3, "pass"));
        using (asm.SkipIf(l => Asm.JneImm(R5, 6, l)))
        {
            asm.Emit(Asm.LoadMapFd(R1, "counters"), Asm.Mov64Imm(R0, 1), Asm.Exit());
        }
        asm.Emit(Asm.LoadImm64(R6, 0x1122334455667788), Asm.ToBigEndian(R6, 16), Asm.StxDW(R10, -8, R6));
        asm.Emit(Asm.AtomicAdd64(R10, -8, R6), Asm.Call(HelperFunc.MapLookupElem));
        asm.Label("pass").Emit(Asm.Mov64Imm(R0, 2), Asm.Exit());
        return asm;
    }

    [Fact]
    public void SymbolicListingIsGolden()
    {
        Assert.Equal(
            "    r2 = *(u32 *)(r1 + 0)\n" +
            "    r3 = *(u32 *)(r1 + 4)\n" +
            "    r4 = r2\n" +
            "    r4 += 14\n" +
            "    if r4 > r3 goto pass\n" +
            "    if r5 != 6 goto .skip0\n" +
            "    r1 = map[counters]\n" +
            "    r0 = 1\n" +
            "    exit\n" +
            ".skip0:\n" +
            "    r6 = 0x1122334455667788 ll\n" +
            "    r6 = be16 r6\n" +
            "    *(u64 *)(r10 - 8) = r6\n" +
            "    lock *(u64 *)(r10 - 8) += r6\n" +
            "    call map_lookup_elem\n" +
            "pass:\n" +
            "    r0 = 2\n" +
            "    exit\n",
            Disassembler.Format(Sample().Build()));
    }

    [Fact]
    public void LinkedBytesDisassembleWithResolvedOffsets()
    {
        var raw = Linker.Link(Sample().Build(), name => name == "counters" ? 42 : throw new KeyNotFoundException());
        Assert.Equal(18 * 8, raw.Length); // 16 instructions, two of them ld_imm64 (two slots each)
        Assert.Equal(
            "0: r2 = *(u32 *)(r1 + 0)\n" +
            "1: r3 = *(u32 *)(r1 + 4)\n" +
            "2: r4 = r2\n" +
            "3: r4 += 14\n" +
            "4: if r4 > r3 goto 16\n" +
            "5: if r5 != 6 goto 10\n" +
            "6: r1 = map_fd(42)\n" +
            "8: r0 = 1\n" +
            "9: exit\n" +
            "10: r6 = 0x1122334455667788 ll\n" +
            "12: r6 = be16 r6\n" +
            "13: *(u64 *)(r10 - 8) = r6\n" +
            "14: lock *(u64 *)(r10 - 8) += r6\n" +
            "15: call map_lookup_elem\n" +
            "16: r0 = 2\n" +
            "17: exit\n",
            Disassembler.Disassemble(raw));
    }

    [Fact]
    public void ExactBytesOfOneJump()
    {
        var asm = new Assembler();
        asm.Emit(Asm.JneImm(R1, 6, "out"), Asm.Mov64Imm(R0, 0)).Label("out").Emit(Asm.Exit());
        var raw = Linker.Link(asm.Build());
        Assert.Equal(new byte[] { 0x55, 0x01, 0x01, 0x00, 0x06, 0, 0, 0 }, raw[..8]);
        Assert.Equal(new byte[] { 0xb7, 0x00, 0x00, 0x00, 0x00, 0, 0, 0 }, raw[8..16]);
        Assert.Equal(new byte[] { 0x95, 0, 0, 0, 0, 0, 0, 0 }, raw[16..24]);
    }

    [Fact]
    public void UnknownLabelReportsIndex()
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Imm(R0, 0), Asm.JeqImm(R0, 0, "nowhere"), Asm.Exit());
        var ex = Assert.Throws<BpfAssemblyException>(() => Linker.Link(asm.Build()));
        Assert.Equal(1, ex.Index);
        Assert.Contains("nowhere", ex.Message);
    }

    [Fact]
    public void UnknownMapReportsIndex()
    {
        var asm = new Assembler();
        asm.Emit(Asm.Mov64Imm(R0, 0), Asm.Mov64Imm(R0, 0), Asm.LoadMapFd(R1, "nope"), Asm.Exit());
        var ex = Assert.Throws<BpfAssemblyException>(() => Linker.Link(asm.Build(), _ => throw new KeyNotFoundException()));
        Assert.Equal(2, ex.Index);
    }

    [Fact]
    public void DuplicateLabelIsRefused()
    {
        var asm = new Assembler();
        asm.Label("a").Emit(Asm.Mov64Imm(R0, 0)).Label("a").Emit(Asm.Exit());
        Assert.Equal(1, Assert.Throws<BpfAssemblyException>(() => Linker.Link(asm.Build())).Index);
    }

    [Fact]
    public void LongUnconditionalJumpBecomesGotol()
    {
        var asm = new Assembler();
        asm.Emit(Asm.Ja("far"));
        for (var i = 0; i < 40000; i++) asm.Emit(Asm.Mov64Imm(R0, 0));
        asm.Label("far").Emit(Asm.Exit());
        var raw = Linker.Link(asm.Build());
        Assert.Equal(0x06, raw[0]); // BPF_JMP32 | BPF_JA
        Assert.StartsWith("0: goto 40001\n", Disassembler.Disassemble(raw));
    }
}
