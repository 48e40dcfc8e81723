using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Tests.Libbpf;

/// <summary>
/// Whether this kernel lets a hash map whose values hold a bpf_spin_lock be a slot of an ARRAY_OF_MAPS (the
/// set copies scheme) and lets a program take the lock of a value found through the outer map.
/// </summary>
public class SpinLockInnerMapTests
{
    [Fact]
    public void HashWithSpinLockIsAnInnerMapAndItsValuesLock()
    {
        using var copy0 = SpinLockMap.Create(BpfMapType.Hash, "sl_copy0", 4, 24, 16, lockOffset: 8);
        using var copy1 = SpinLockMap.Create(BpfMapType.Hash, "sl_copy1", 4, 24, 16, lockOffset: 8);
        using var outer = BpfMap.Create(BpfMapType.ArrayOfMaps, "sl_outer", 4, 4, 2, inner: copy0);
        outer.Update(BitConverter.GetBytes(0), BitConverter.GetBytes(copy0.Fd.Value));
        outer.Update(BitConverter.GetBytes(1), BitConverter.GetBytes(copy1.Fd.Value));
        copy1.Update(BitConverter.GetBytes(7), new byte[24]);

        // outer[1][7]: lock, add 5 to the u64 at 16, unlock
        var asm = new Assembler();
        asm.Emit(Asm.StW(R10, -4, 1), Asm.StW(R10, -8, 7), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -4),
            Asm.LoadMapFd(R1, "o"), Asm.Call(HelperFunc.MapLookupElem), Asm.Mov64Imm(R6, 1));
        using (asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
        {
            asm.Emit(Asm.Mov64Reg(R1, R0), Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, -8), Asm.Call(HelperFunc.MapLookupElem));
            using (asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
                asm.Emit(Asm.Mov64Reg(R7, R0), Asm.Mov64Reg(R1, R7), Asm.Add64Imm(R1, 8), Asm.Call(HelperFunc.SpinLock),
                    Asm.LdxDW(R2, R7, 16), Asm.Add64Imm(R2, 5), Asm.StxDW(R7, 16, R2),
                    Asm.Mov64Reg(R1, R7), Asm.Add64Imm(R1, 8), Asm.Call(HelperFunc.SpinUnlock), Asm.Mov64Imm(R6, 2));
        }
        asm.Emit(Asm.Mov64Reg(R0, R6), Asm.Exit());
        using var prog = BpfProgram.Load(BpfProgType.Xdp, "sl_inner", Linker.Link(asm.Build(), _ => outer.Fd.Value), BpfAttachType.Xdp);
        Assert.Equal(2u, prog.TestRun(new byte[64], repeat: 3).ReturnValue);
        var v = new byte[24];
        Assert.True(copy1.TryLookup(BitConverter.GetBytes(7), v));
        Assert.Equal(15ul, BitConverter.ToUInt64(v, 16));

        // user space writes a whole value under the element's lock (BPF_F_LOCK = 4), as it would carry a bucket
        var written = new byte[24];
        BitConverter.TryWriteBytes(written.AsSpan(16), 100ul);
        copy1.Update(BitConverter.GetBytes(7), written, flags: 4);
        Assert.Equal(2u, prog.TestRun(new byte[64]).ReturnValue);
        Assert.True(copy1.TryLookup(BitConverter.GetBytes(7), v));
        Assert.Equal(105ul, BitConverter.ToUInt64(v, 16));
    }
}
