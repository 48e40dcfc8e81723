using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Meta keys: those the runtime context holds (l4proto, protocol, nfproto, length), interface names, and
/// what the hook flavour provides (iif, oif, mark, pkttype).
/// </summary>
public sealed partial class ProgramCompiler
{
    /// <summary>Loads a part of a meta key (interface names: 16 bytes, read in parts) as a host-order number.</summary>
    private void LoadMeta(MetaKey key, Part part, Register dst, string fail)
    {
        if (key is MetaKey.IifName or MetaKey.OifName)
        {
            var at = _flavor.EmitInterfaceName(_asm, key, fail);
            LoadNumber(at, part.Start, part.Count, dst);
            return;
        }
        switch (key)
        {
            case MetaKey.L4Proto:
                _asm.Emit(Asm.LdxW(R1, R10, Flags), Asm.And64Imm(R1, HasL4Proto), Asm.JeqImm(R1, 0, fail),
                    Asm.LdxW(dst, R10, L4Proto));
                return;
            case MetaKey.Protocol:
                _asm.Emit(Asm.LdxW(dst, R10, L3Proto));
                return;
            case MetaKey.NfProto:
                // netdev: NFPROTO_NETDEV; inet ingress and netfilter programs: from the network protocol.
                var fixedNf = _flavor is NetfilterFlavor ? _flavor.FixedNfProto : _currentNfProto;
                if (fixedNf is { } nf) { _asm.Emit(Asm.Mov64Imm(dst, nf)); return; }
                var done = _asm.NewLabel("nfdone");
                _asm.Emit(Asm.LdxW(R1, R10, L3Proto), Asm.Mov64Imm(dst, 2), Asm.JeqImm(R1, EtherTypeIpv4, done),
                    Asm.Mov64Imm(dst, 10), Asm.JeqImm(R1, EtherTypeIpv6, done), Asm.Ja(fail));
                _asm.Label(done);
                return;
            case MetaKey.Length:
                EmitLength(dst);
                return;
        }
        if (!_flavor.EmitMeta(_asm, key, dst, fail))
            throw new CodegenException($"meta {key.ToString().ToLowerInvariant()} is not available at {_flavor.ProgramType} hooks");
    }
}
