using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Libbpf;

public class LibbpfTests
{
    private static readonly byte[] Packet = new byte[64];

    [Fact]
    public void LoadsAndTestRunsXdp()
    {
        var asm = new Assembler().Emit(Asm.Mov64Imm(R0, 1), Asm.Exit()); // XDP_DROP
        using var prog = BpfProgram.Load(BpfProgType.Xdp, "h5_drop", Linker.Link(asm.Build()), BpfAttachType.Xdp);
        var r = prog.TestRun(Packet, repeat: 10);
        Assert.Equal(1u, r.ReturnValue);
    }

    [Fact]
    public void VerifierRejectionCarriesLog()
    {
        // Reads r2 before anything wrote it: the verifier says "R2 !read_ok".
        var asm = new Assembler().Emit(Asm.Mov64Reg(R0, R2), Asm.Exit());
        var ex = Assert.Throws<BpfVerifierException>(() =>
            BpfProgram.Load(BpfProgType.Xdp, "h5_bad", Linker.Link(asm.Build()), BpfAttachType.Xdp));
        Assert.Equal(13, ex.Errno); // EACCES
        Assert.Contains("R2 !read_ok", ex.Log);
        Assert.Contains("R2 !read_ok", ex.Message);
    }

    [Fact]
    public void HashMapRoundTripAndProgramReadsIt()
    {
        using var map = BpfMap.Create(BpfMapType.Hash, "h5_hash", 4, 4, 16);
        map.Update([1, 2, 3, 4], BitConverter.GetBytes(7u));
        var value = new byte[4];
        Assert.True(map.TryLookup([1, 2, 3, 4], value));
        Assert.Equal(7u, BitConverter.ToUInt32(value));
        Assert.False(map.TryLookup([9, 9, 9, 9], value));

        // Program: key 0x04030201 on stack, look it up, return the stored value or 99.
        var asm = new Assembler();
        asm.Emit(Asm.StW(R10, -4, 0x04030201), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -4),
            Asm.LoadMapFd(R1, "h"), Asm.Call(HelperFunc.MapLookupElem), Asm.Mov64Imm(R1, 99));
        using (asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
            asm.Emit(Asm.LdxW(R1, R0, 0));
        asm.Emit(Asm.Mov64Reg(R0, R1), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Xdp, "h5_lookup", Linker.Link(asm.Build(), _ => map.Fd.Value), BpfAttachType.Xdp);
        Assert.Equal(7u, prog.TestRun(Packet).ReturnValue);
        Assert.True(map.Delete([1, 2, 3, 4]));
        Assert.Equal(99u, prog.TestRun(Packet).ReturnValue);
    }

    [Fact]
    public void PerCpuArraySumsAcrossCpus()
    {
        using var map = BpfMap.Create(BpfMapType.PerCpuArray, "h5_pcpu", 4, 16, 4);
        var asm = new Assembler();
        asm.Emit(Asm.StW(R10, -4, 2), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -4),
            Asm.LoadMapFd(R1, "c"), Asm.Call(HelperFunc.MapLookupElem));
        using (asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
        {
            asm.Emit(Asm.LdxDW(R1, R0, 0), Asm.Add64Imm(R1, 1), Asm.StxDW(R0, 0, R1));
            asm.Emit(Asm.LdxDW(R1, R0, 8), Asm.Add64Imm(R1, 64), Asm.StxDW(R0, 8, R1));
        }
        asm.Emit(Asm.Mov64Imm(R0, 2), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Xdp, "h5_count", Linker.Link(asm.Build(), _ => map.Fd.Value), BpfAttachType.Xdp);
        prog.TestRun(Packet, repeat: 5);
        Assert.Equal(new ulong[] { 5, 320 }, map.SumPerCpu(2));
        Assert.Equal(new ulong[] { 0, 0 }, map.SumPerCpu(1));
    }

    [Fact]
    public void LpmTrieMatchesLongestPrefix()
    {
        using var map = BpfMap.Create(BpfMapType.LpmTrie, "h5_lpm", 8, 4, 16);
        map.Update([8, 0, 0, 0, 10, 0, 0, 0], BitConverter.GetBytes(1u));
        map.Update([24, 0, 0, 0, 10, 1, 2, 0], BitConverter.GetBytes(2u));
        var v = new byte[4];
        Assert.True(map.TryLookup([32, 0, 0, 0, 10, 1, 2, 3], v));
        Assert.Equal(2u, BitConverter.ToUInt32(v));
        Assert.True(map.TryLookup([32, 0, 0, 0, 10, 9, 2, 3], v));
        Assert.Equal(1u, BitConverter.ToUInt32(v));
        Assert.False(map.TryLookup([32, 0, 0, 0, 11, 9, 2, 3], v));
    }

    [Fact]
    public void KfuncIdsComeFromVmlinuxBtf()
    {
        Assert.True(VmlinuxBtf.FuncId("bpf_dynptr_from_skb") > 0);
        Assert.Throws<BpfException>(() => VmlinuxBtf.FuncId("no_such_kfunc_h5"));
    }
}
