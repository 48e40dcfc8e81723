using Bpfilter.Backend.Bpf;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>How much of the packet the prologue parses: only what the rules use.</summary>
internal enum ParseDepth { None, Link, Transport }

/// <summary>
/// The prologue: fills <see cref="RuntimeContext"/> with the network header offset and EtherType
/// (Ethernet + one 802.1Q/802.1ad tag), then validates IPv4/IPv6 the way nf_tables' pktinfo does
/// and finds the transport header: IPv4 via ihl, IPv6 by walking up to
/// <see cref="RuntimeContext.MaxIpv6ExtensionHeaders"/> extension headers. A non-first fragment has
/// a transport protocol and nf_tables' thoff (IPv4: behind the header; IPv6: the start of skb->data),
/// which only fast-path loads read (<see cref="Ir.PayloadField.FastLoad"/>).
/// </summary>
internal sealed class HeaderParser(IFlavor flavor, Assembler asm)
{
    public void Emit(ParseDepth depth)
    {
        if (depth == ParseDepth.None) return;
        var done = asm.NewLabel("parsed");
        asm.Emit(Asm.Mov64Imm(R0, 0));
        // not PacketSize: the flavor stores it right after
        foreach (var slot in new[] { Flags, L3Off, L4Off, L3Proto, L4Proto })
            asm.Emit(Asm.StxW(R10, slot, R0));
        flavor.EmitPacketSize(asm);

        if (flavor.HasLinkLayer) EmitLink(done);
        else asm.Emit(Asm.Mov64Imm(R0, flavor.FixedEtherType!.Value), Asm.StxW(R10, L3Proto, R0), SetFlags(HasNetwork));

        if (depth == ParseDepth.Transport)
        {
            var notV4 = asm.NewLabel("not_ipv4");
            if (flavor.FixedEtherType is int fixedType)
            {
                if (fixedType == EtherTypeIpv4) EmitIpv4(done); else EmitIpv6(done);
            }
            else
            {
                asm.Emit(Asm.LdxW(R0, R10, L3Proto), Asm.JneImm(R0, EtherTypeIpv4, notV4));
                EmitIpv4(done);
                asm.Label(notV4);
                asm.Emit(Asm.LdxW(R0, R10, L3Proto), Asm.JneImm(R0, EtherTypeIpv6, done));
                EmitIpv6(done);
            }
        }
        asm.Label(done);
    }

    private Instruction[] SetFlagsSeq(int bits) =>
        [Asm.LdxW(R0, R10, Flags), Asm.Alu64Imm(AluOp.Or, R0, bits), Asm.StxW(R10, Flags, R0)];

    private Instruction SetFlags(int bits)
    {
        // Callers needing a single instruction use it only when flags are known to be zero.
        return Asm.StW(R10, Flags, bits);
    }

    private void EmitLink(string done)
    {
        var at = flavor.EmitAccess(asm, null, 12, 2, done);
        asm.Emit(Asm.Ldx(Size.H, R3, at.Pointer, at.Offset), Asm.ToBigEndian(R3, 16),
            Asm.Mov64Imm(R0, 14), Asm.StxW(R10, L3Off, R0), Asm.StxW(R10, L3Proto, R3));
        asm.Emit(SetFlagsSeq(HasL2 | HasNetwork));
        if (flavor is TcFlavor)
        {
            // The stack has already moved a VLAN tag into skb->vlan_tci: data is untagged.
            asm.Emit(Asm.LdxW(R0, R6, 20)); // __sk_buff.vlan_present
            using (asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
                asm.Emit(SetFlagsSeq(HasVlan));
            return;
        }
        var untagged = asm.NewLabel("untagged");
        asm.Emit(Asm.JeqImm(R3, EtherTypeVlan, untagged + "_tag"), Asm.JneImm(R3, EtherTypeQinQ, untagged));
        asm.Label(untagged + "_tag");
        // One tag, as the kernel's skb_vlan_untag: the network header follows it.
        asm.Emit(Asm.Mov64Reg(R4, R3)); // the outer TPID (EmitAccess uses R1, R2)
        var inner = flavor.EmitAccess(asm, null, 16, 2, done);
        // HasVlan (the IR's vlan fields) only for an 802.1Q tag: nft's vlan matches depend on
        // `ether type 8021q`, which an 802.1ad outer tag does not satisfy.
        asm.Emit(Asm.Ldx(Size.H, R3, inner.Pointer, inner.Offset), Asm.ToBigEndian(R3, 16),
            Asm.Mov64Imm(R0, 18), Asm.StxW(R10, L3Off, R0), Asm.StxW(R10, L3Proto, R3));
        using (asm.SkipIf(l => Asm.JneImm(R4, EtherTypeVlan, l)))
            asm.Emit(SetFlagsSeq(HasVlan));
        asm.Label(untagged);
    }

    private void EmitIpv4(string done)
    {
        var h = flavor.EmitAccess(asm, L3Off, 0, 20, done);
        var p = h.Pointer;
        var o = h.Offset;
        asm.Emit(Asm.Ldx(Size.B, R0, p, o), Asm.Mov64Reg(R3, R0), Asm.And64Imm(R3, 0x0f), Asm.Rsh64Imm(R0, 4),
            Asm.JneImm(R0, 4, done), Asm.JltImm(R3, 5, done), Asm.Lsh64Imm(R3, 2),
            // tot_len must cover the header and fit in the packet
            Asm.Ldx(Size.H, R4, p, (short)(o + 2)), Asm.ToBigEndian(R4, 16), Asm.JltReg(R4, R3, done),
            Asm.LdxW(R5, R10, PacketSize), Asm.LdxW(R0, R10, L3Off), Asm.Sub64Reg(R5, R0), Asm.JltReg(R5, R4, done),
            Asm.Ldx(Size.B, R0, p, (short)(o + 9)), Asm.StxW(R10, L4Proto, R0),
            Asm.Ldx(Size.H, R4, p, (short)(o + 6)), Asm.ToBigEndian(R4, 16), Asm.And64Imm(R4, 0x1fff),
            Asm.LdxW(R0, R10, L3Off), Asm.Add64Reg(R0, R3), Asm.StxW(R10, L4Off, R0));
        using (asm.SkipIf(l => Asm.JeqImm(R4, 0, l)))
            asm.Emit(SetFlagsSeq(Fragment));
        asm.Emit(SetFlagsSeq(HasL4Proto));
        asm.Emit(Asm.Ja(done));
    }

    private void EmitIpv6(string done)
    {
        var h = flavor.EmitAccess(asm, L3Off, 0, 40, done);
        var p = h.Pointer;
        var o = h.Offset;
        asm.Emit(Asm.Ldx(Size.B, R0, p, o), Asm.Rsh64Imm(R0, 4), Asm.JneImm(R0, 6, done),
            Asm.Ldx(Size.H, R4, p, (short)(o + 4)), Asm.ToBigEndian(R4, 16), Asm.Add64Imm(R4, 40),
            Asm.LdxW(R5, R10, PacketSize), Asm.LdxW(R0, R10, L3Off), Asm.Sub64Reg(R5, R0), Asm.JltReg(R5, R4, done),
            Asm.Ldx(Size.B, R3, p, (short)(o + 6)), Asm.StxW(R10, WalkNext, R3),
            Asm.LdxW(R0, R10, L3Off), Asm.Add64Imm(R0, 40), Asm.StxW(R10, WalkCursor, R0));

        var found = asm.NewLabel("l4_found");
        for (var i = 0; i < MaxIpv6ExtensionHeaders; i++)
        {
            var opt = asm.NewLabel("ext_opt");
            var auth = asm.NewLabel("ext_auth");
            var frag = asm.NewLabel("ext_frag");
            var advance = asm.NewLabel("ext_next");
            asm.Emit(Asm.LdxW(R0, R10, WalkNext),
                Asm.JeqImm(R0, 0, opt), Asm.JeqImm(R0, 43, opt), Asm.JeqImm(R0, 60, opt),
                Asm.JeqImm(R0, 51, auth), Asm.JeqImm(R0, 44, frag), Asm.Ja(found));

            // hop-by-hop, routing, destination options: (hdrlen + 1) * 8
            asm.Label(opt);
            var a = flavor.EmitAccess(asm, WalkCursor, 0, 8, done);
            asm.Emit(Asm.Ldx(Size.B, R3, a.Pointer, (short)(a.Offset + 1)), Asm.Add64Imm(R3, 1), Asm.Lsh64Imm(R3, 3),
                Asm.Ldx(Size.B, R4, a.Pointer, a.Offset), Asm.Ja(advance));

            // AH: (hdrlen + 2) * 4
            asm.Label(auth);
            a = flavor.EmitAccess(asm, WalkCursor, 0, 8, done);
            asm.Emit(Asm.Ldx(Size.B, R3, a.Pointer, (short)(a.Offset + 1)), Asm.Add64Imm(R3, 2), Asm.Lsh64Imm(R3, 2),
                Asm.Ldx(Size.B, R4, a.Pointer, a.Offset), Asm.Ja(advance));

            // fragment: 8 bytes; a non-first fragment ends the walk with its next header as l4proto
            // (no next header, 59, included: ipv6_find_hdr returns it like a transport protocol)
            asm.Label(frag);
            a = flavor.EmitAccess(asm, WalkCursor, 0, 8, done);
            asm.Emit(Asm.Ldx(Size.B, R4, a.Pointer, a.Offset), Asm.Ldx(Size.H, R5, a.Pointer, (short)(a.Offset + 2)),
                Asm.ToBigEndian(R5, 16), Asm.And64Imm(R5, 0xfff8), Asm.Mov64Imm(R3, 8), Asm.JeqImm(R5, 0, advance));
            foreach (var ext in new[] { 0, 43, 44, 51, 60 }) asm.Emit(Asm.JeqImm(R4, ext, done));
            asm.Emit(Asm.StxW(R10, L4Proto, R4));
            // ipv6_find_hdr returns here without setting the offset, so nf_tables' thoff stays 0: the
            // start of skb->data, the network header except at egress (the Ethernet header, our 0)
            if (!flavor.HasLinkLayer || flavor.LengthFromNetworkHeader)
                asm.Emit(Asm.LdxW(R0, R10, L3Off), Asm.StxW(R10, L4Off, R0));
            asm.Emit(SetFlagsSeq(Fragment | HasL4Proto));
            asm.Emit(Asm.Ja(done));

            asm.Label(advance);
            // Bound the cursor so the verifier sees a small range whatever path led here.
            asm.Emit(Asm.StxW(R10, WalkNext, R4), Asm.LdxW(R0, R10, WalkCursor), Asm.Add64Reg(R0, R3),
                Asm.JgtImm(R0, MaxOffset, done), Asm.StxW(R10, WalkCursor, R0));
        }
        asm.Emit(Asm.Ja(done)); // more extension headers than we walk: no transport header

        // Anything else ends the walk as the transport protocol, no next header (59) included:
        // ipv6_find_hdr stops there and nf_tables sets l4proto 59 with thoff behind the headers.
        asm.Label(found);
        asm.Emit(Asm.LdxW(R0, R10, WalkNext), Asm.StxW(R10, L4Proto, R0),
            Asm.LdxW(R0, R10, WalkCursor), Asm.StxW(R10, L4Off, R0));
        asm.Emit(SetFlagsSeq(HasL4Proto));
    }
}
