using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// ct keys, read the way nft_ct_get_eval reads them, in netfilter programs only: ctx->skb is a trusted
/// BTF pointer, so skb->_nfct is a direct load; ctinfo = _nfct &amp; 7, the entry = _nfct &amp; ~7. Without an
/// entry the state is invalid (_nfct == 0) or untracked (ctinfo IP_CT_UNTRACKED) and every other key
/// fails the matcher (NFT_BREAK), as do the ip/ip6 address keys on an entry of the other family.
/// Entry fields are read through bpf_rdonly_cast to struct nf_conn (type id looked up by exact name:
/// CO-RE cannot tell nf_conn from nf_conn___init), at offsets from the running kernel's BTF.
/// XDP and tc programs have no _nfct with nft's meaning: ct is refused there.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>IP_CT_UNTRACKED, IP_CT_IS_REPLY (ctinfo values); NFPROTO_IPV4, NFPROTO_IPV6 (nf_ct_l3num).</summary>
    private const int CtUntracked = 7, CtIsReply = 3, NfProtoIpv4 = 2, NfProtoIpv6 = 10;

    /// <summary>Loads a part of a ct key into dst as a host-order number, or jumps to fail when the packet lacks it.</summary>
    private void LoadCt(CtField f, Part part, Register dst, string fail)
    {
        RequireNetfilter(f);
        if (dst is R1 or R2) throw new CodegenException("ct keys are loaded into R0 or R3-R9");
        var nfct = (short)(VmlinuxBtf.Member("sk_buff", "_nfct").BitOffset / 8);
        _asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxDW(R1, R1, nfct), Asm.Mov64Reg(R2, R1), Asm.And64Imm(R2, ~7));
        switch (f.Key)
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
            case CtReadKey.Expiration:
                LoadCtExpiration(dst, fail);
                return;
        }
        _asm.Emit(Asm.JeqImm(R2, 0, fail));
        CastToNfConn();
        if (AddressFamily(f.Key) is { } family)
            _asm.Emit(Asm.LdxH(R1, R0, (short)Conn("tuplehash[0].tuple.src.l3num")), Asm.JneImm(R1, family, fail));
        // the entry in R1 from here: dst may be R0, and LoadNumber uses R2
        _asm.Emit(Asm.Mov64Reg(R1, R0));
        var dir = f.Dir is CtDirection.Reply ? 1 : 0;
        var tuple = $"tuplehash[{dir}].tuple";
        switch (f.Key)
        {
            case CtReadKey.Src or CtReadKey.Dst or CtReadKey.SrcIp or CtReadKey.DstIp or CtReadKey.SrcIp6 or CtReadKey.DstIp6:
            {
                // network-order bytes of the address: a big-endian number, 8 bytes per part at most
                var end = f.Key is CtReadKey.Src or CtReadKey.SrcIp or CtReadKey.SrcIp6 ? "src" : "dst";
                LoadNumber(new BytesRef(R1, (short)(Conn($"{tuple}.{end}.u3") + part.Start)), 0, part.Count, dst);
                return;
            }
            case CtReadKey.ProtoSrc or CtReadKey.ProtoDst:
            {
                var end = f.Key is CtReadKey.ProtoSrc ? "src" : "dst";
                LoadNumber(new BytesRef(R1, (short)Conn($"{tuple}.{end}.u")), 0, 2, dst);
                return;
            }
            case CtReadKey.Label:
                LoadCtLabels(part, dst);
                return;
            case CtReadKey.Zone when f.Dir is not null:
            {
                // nf_ct_zone_id: the id if the zone applies to this direction (zone.dir bit), else NF_CT_DEFAULT_ZONE_ID
                var applies = _asm.NewLabel("ct_zone_dir");
                _asm.Emit(Asm.LdxB(R2, R1, (short)Conn("zone.dir")), Asm.Mov64Imm(dst, 0), Asm.JsetImm(R2, 1 << dir, applies));
                var done = _asm.NewLabel("ct_zone");
                _asm.Emit(Asm.Ja(done));
                _asm.Label(applies);
                _asm.Emit(Asm.LdxH(dst, R1, (short)Conn("zone.id")));
                _asm.Label(done);
                return;
            }
        }
        var (offset, size) = f.Key switch
        {
            // status is an unsigned long: nft stores its low 32 bits (little endian: the first word)
            CtReadKey.Status => (Conn("status"), Size.W),
            CtReadKey.Mark => (Conn("mark"), Size.W),
            CtReadKey.Zone => (Conn("zone.id"), Size.H),
            CtReadKey.L3Proto => (Conn("tuplehash[0].tuple.src.l3num"), Size.B),
            CtReadKey.Protocol => (Conn("tuplehash[0].tuple.dst.protonum"), Size.B),
            _ => throw new CodegenException($"{f} is not supported"),
        };
        // l3num is a u16 stored as nft_reg_store8 does (its low byte; little endian: the first)
        _asm.Emit(Asm.Ldx(size, dst, R1, (short)offset));
    }

    /// <summary>
    /// jiffies_to_msecs(nf_ct_expires(ct)): timeout is a u32 in jiffies, compared with the low 32 bits of
    /// jiffies as a signed difference, 0 once past; the milliseconds wrap as the kernel's unsigned int does.
    /// </summary>
    private void LoadCtExpiration(Register dst, string fail)
    {
        if (KernelHz.TickMs is not { } tickMs)
            throw new CodegenException($"ct expiration: the kernel's HZ ({KernelHz.Hz?.ToString() ?? "unknown"}) does not divide 1000 " +
                "(read from /proc/config.gz or /boot/config-$(uname -r))");
        _asm.Emit(Asm.JeqImm(R2, 0, fail));
        CastToNfConn();
        // the jiffies64 call clobbers R0-R5: keep the timeout on the stack meanwhile
        _asm.Emit(Asm.LdxW(R1, R0, (short)Conn("timeout")), Asm.StxDW(R10, Scratch, R1), Asm.Call(HelperFunc.Jiffies64),
            Asm.LdxDW(R1, R10, Scratch), Asm.Alu32Reg(AluOp.Sub, R1, R0));
        var positive = _asm.NewLabel("ct_expires");
        _asm.Emit(Asm.Jump32Imm(JumpOp.Jsge, R1, 0, positive), Asm.Mov64Imm(R1, 0));
        _asm.Label(positive);
        _asm.Emit(Asm.Alu32Imm(AluOp.Mul, R1, tickMs), Asm.Mov64Reg(dst, R1));
    }

    /// <summary>
    /// A part of the entry's (in R1) label bits, as nft_ct_get_eval loads NFT_CT_LABELS through nf_ct_labels_find
    /// (<see cref="CtLabelLayout"/>): the extension's bytes when ext is set and its labels offset is not 0, else zeros.
    /// The offset is a variable, so the extension's address goes through bpf_rdonly_cast again.
    /// </summary>
    private void LoadCtLabels(Part part, Register dst)
    {
        if (CtLabelLayout.Unreadable is { } why) throw new CodegenException($"ct label: {why}");
        var none = _asm.NewLabel("ct_no_labels");
        var done = _asm.NewLabel("ct_labels");
        _asm.Emit(Asm.LdxDW(R2, R1, (short)Conn("ext")), Asm.JeqImm(R2, 0, none),
            Asm.LdxB(R1, R2, (short)CtLabelLayout.ExtensionOffsetAt), Asm.JeqImm(R1, 0, none), Asm.Add64Reg(R2, R1),
            Asm.Mov64Reg(R1, R2), Asm.Mov64Imm(R2, VmlinuxBtf.StructId("nf_conn_labels")),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_rdonly_cast")), Asm.Mov64Reg(R1, R0));
        // the bytes in memory order as a big-endian number (CtReadKey.Label)
        LoadNumber(new BytesRef(R1, (short)part.Start), 0, part.Count, dst);
        _asm.Emit(Asm.Ja(done));
        _asm.Label(none);
        _asm.Emit(Asm.Mov64Imm(dst, 0));
        _asm.Label(done);
    }

    /// <summary>R0 = the entry in R2 as a struct nf_conn pointer (clobbers R1-R5).</summary>
    private void CastToNfConn() =>
        _asm.Emit(Asm.Mov64Reg(R1, R2), Asm.Mov64Imm(R2, VmlinuxBtf.StructId("nf_conn")),
            Asm.CallKfunc(VmlinuxBtf.FuncId("bpf_rdonly_cast")));

    /// <summary>The entry family a key needs (nft_ct_get_eval breaks the rule on another), or null for any.</summary>
    private static int? AddressFamily(CtReadKey key) => key switch
    {
        CtReadKey.SrcIp or CtReadKey.DstIp => NfProtoIpv4,
        CtReadKey.SrcIp6 or CtReadKey.DstIp6 => NfProtoIpv6,
        _ => null,
    };

    /// <summary>
    /// Jumps to fail when the packet lacks the key: no conntrack entry (every ct key but state), or an entry of
    /// the other family for the ip/ip6 address keys. Negated concatenations check this before comparing.
    /// </summary>
    private void EmitCtPresenceCheck(CtField f, string fail)
    {
        RequireNetfilter(f);
        var nfct = (short)(VmlinuxBtf.Member("sk_buff", "_nfct").BitOffset / 8);
        _asm.Emit(Asm.LdxDW(R1, R6, 8), Asm.LdxDW(R2, R1, nfct), Asm.And64Imm(R2, ~7), Asm.JeqImm(R2, 0, fail));
        if (AddressFamily(f.Key) is not { } family) return;
        CastToNfConn();
        _asm.Emit(Asm.LdxH(R1, R0, (short)Conn("tuplehash[0].tuple.src.l3num")), Asm.JneImm(R1, family, fail));
    }

    private void RequireNetfilter(CtField f)
    {
        if (_flavor is not NetfilterFlavor)
            throw new CodegenException($"{f} is only available at netfilter hooks, not in {_flavor.ProgramType} programs");
    }

    private static int Conn(string path) => VmlinuxBtf.MemberPath("nf_conn", path);
}
