using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// ct keys, read the way nft_ct_get_eval reads them, in netfilter programs only: ctx->skb is a trusted
/// BTF pointer, so skb->_nfct is a direct load; ctinfo = _nfct &amp; 7, the entry = _nfct &amp; ~7. Without an
/// entry the state is invalid (_nfct == 0) or untracked (ctinfo IP_CT_UNTRACKED) and every other key
/// fails the matcher (NFT_BREAK). Entry fields are read through bpf_rdonly_cast to struct nf_conn
/// (type id looked up by exact name: CO-RE cannot tell nf_conn from nf_conn___init).
/// XDP and tc programs have no _nfct with nft's meaning: ct is refused there.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>IP_CT_UNTRACKED, IP_CT_IS_REPLY (ctinfo values).</summary>
    private const int CtUntracked = 7, CtIsReply = 3;

    private void LoadCt(CtReadKey key, Register dst, string fail)
    {
        if (_flavor is not NetfilterFlavor)
            throw new CodegenException($"ct {key.ToString().ToLowerInvariant()} is only available at netfilter hooks, not in {_flavor.ProgramType} programs");
        if (dst is R1 or R2) throw new CodegenException("ct keys are loaded into R0 or R3-R9");
        var nfct = (short)(VmlinuxBtf.Member("sk_buff", "_nfct").BitOffset / 8);
        _asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxDW(R1, R1, nfct), Asm.Mov64Reg(R2, R1), Asm.And64Imm(R2, ~7));
        switch (key)
        {
            case CtReadKey.State:
            {
                var tracked = _asm.NewLabel("ct_tracked");
                var shift = _asm.NewLabel("ct_shift");
                var done = _asm.NewLabel("ct_state");
                _asm.Emit(Asm.JneImm(R2, 0, tracked),
                    Asm.Mov64Imm(R2, (int)CtFields.Invalid), Asm.JneImm(R1, CtUntracked, done),
                    Asm.Mov64Imm(R2, (int)CtFields.Untracked), Asm.Ja(done));
                _asm.Label(tracked);
                // NF_CT_STATE_BIT(ctinfo) = 1 << (ctinfo % IP_CT_IS_REPLY + 1)
                _asm.Emit(Asm.And64Imm(R1, 7), Asm.JltImm(R1, CtIsReply, shift), Asm.Add64Imm(R1, -CtIsReply));
                _asm.Label(shift);
                _asm.Emit(Asm.Mov64Imm(R2, 2), Asm.Alu64Reg(AluOp.Lsh, R2, R1));
                _asm.Label(done);
                _asm.Emit(Asm.Mov64Reg(dst, R2));
                return;
            }
            case CtReadKey.Direction:
                _asm.Emit(Asm.JeqImm(R2, 0, fail), Asm.And64Imm(R1, 7), Asm.Mov64Imm(dst, 0));
                var original = _asm.NewLabel("ct_original");
                _asm.Emit(Asm.JltImm(R1, CtIsReply, original), Asm.Mov64Imm(dst, 1));
                _asm.Label(original);
                return;
        }
        var (offset, size) = key switch
        {
            // status is an unsigned long: nft stores its low 32 bits (little endian: the first word)
            CtReadKey.Status => (Bytes("nf_conn", "status"), Size.W),
            CtReadKey.Mark => (Bytes("nf_conn", "mark"), Size.W),
            CtReadKey.Zone => (Bytes("nf_conn", "zone") + Bytes("nf_conntrack_zone", "id"), Size.H),
            _ => throw new CodegenException($"ct {key.ToString().ToLowerInvariant()} is not supported"),
        };
        _asm.Emit(Asm.JeqImm(R2, 0, fail), Asm.Mov64Reg(R1, R2), Asm.Mov64Imm(R2, VmlinuxBtf.StructId("nf_conn")),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_rdonly_cast")), Asm.Ldx(size, dst, R0, (short)offset));
    }

    /// <summary>Jumps to fail when the packet has no conntrack entry (every ct key but state is then absent).</summary>
    private void EmitCtEntryCheck(string fail)
    {
        if (_flavor is not NetfilterFlavor)
            throw new CodegenException($"ct keys are only available at netfilter hooks, not in {_flavor.ProgramType} programs");
        var nfct = (short)(VmlinuxBtf.Member("sk_buff", "_nfct").BitOffset / 8);
        _asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxDW(R1, R1, nfct), Asm.And64Imm(R1, ~7), Asm.JeqImm(R1, 0, fail));
    }

    private static int Bytes(string s, string m) => VmlinuxBtf.Member(s, m).BitOffset / 8;
}
