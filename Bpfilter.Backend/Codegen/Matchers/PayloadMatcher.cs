using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Header fields (link, network, transport bases; ether, vlan, ip, ip6, tcp, udp, icmp and raw payloads):
/// bounds-checked access at the offset the prologue parsed, sub-byte fields shifted and masked.
/// Transport fields the kernel loads through its fast path are read in non-first fragments as well.
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>Loads a part of a header field (any base, any bit offset) as a host-order number.</summary>
    private void LoadPayload(PayloadField p, Part part, Register dst, string fail)
    {
        var at = Access(p, fail);
        var aligned = p.OffsetBits % 8 == 0 && p.LengthBits % 8 == 0;
        if (aligned)
        {
            LoadNumber(at, part.Start, part.Count, dst);
            return;
        }
        var first = p.OffsetBits / 8;
        var span = (p.OffsetBits + p.LengthBits + 7) / 8 - first;
        LoadNumber(at, 0, span, dst);
        var shift = span * 8 - (p.OffsetBits % 8 + p.LengthBits);
        if (shift > 0) _asm.Emit(Asm.Rsh64Imm(dst, shift));
        if (p.LengthBits < 64) AndConst(dst, (1UL << p.LengthBits) - 1);
    }

    private BytesRef Access(PayloadField p, string fail)
    {
        short? slot = p.Base switch
        {
            PayloadBase.Link when !_flavor.HasLinkLayer =>
                throw new CodegenException($"{p}: no link-layer header at netfilter hooks"),
            PayloadBase.Link => null,
            PayloadBase.Network => L3Off,
            _ => L4Off,
        };
        if (_flavor is TcFlavor && p.Base == PayloadBase.Link && (p.OffsetBits + p.LengthBits > 96 || p.Protocol == HeaderProtocol.Vlan))
            throw new CodegenException($"{p}: at TC hooks the VLAN tag is already out of the packet; use meta protocol / vlan matches at XDP");
        if (p.Base == PayloadBase.Transport && p.FastLoad is { } load)
        {
            // nft_payload_fast_eval reads a non-first fragment at thoff too, but only in the linear
            // area; past it nft_payload_eval takes over and breaks on the fragment offset
            _asm.Emit(Asm.LdxW(R0, R10, Flags), Asm.And64Imm(R0, Fragment));
            using (_asm.SkipIf(l => Asm.JeqImm(R0, 0, l)))
                _flavor.EmitLinearCheck(_asm, L4Off, load.Offset + load.Length, fail);
        }
        var first = p.OffsetBits / 8;
        var span = (p.OffsetBits + p.LengthBits + 7) / 8 - first;
        return _flavor.EmitAccess(_asm, slot, first, span, fail);
    }
}
