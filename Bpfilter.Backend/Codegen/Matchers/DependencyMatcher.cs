using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

/// <summary>
/// Header dependencies of a rule (a field of a header implies the header: ether type, l4proto, no fragment),
/// checked once per rule before its matchers.
/// </summary>
public sealed partial class ProgramCompiler
{
    private void EmitDependencies(Dependencies d, string fail)
    {
        // Few branches per rule: the verifier keeps one pending state per branch along a path, and a
        // path through a long chain may hold at most 8192 of them.
        var required = d.RequiredFlags;
        if (d.EtherType is not null) required &= ~HasNetwork; // a known EtherType implies the network header
        if (d.L4Proto is not null) required &= ~HasL4Proto; // l4proto is 0 unless set, and 0 is never required
        var mask = required | (d.NeedsTransportHeader ? Fragment : 0);
        if (mask != 0) _asm.Emit(Asm.LdxW(R0, R10, Flags), Asm.And64Imm(R0, mask), Asm.JneImm(R0, required, fail));
        if (d.EtherType is { } t && _flavor.FixedEtherType != t)
        {
            if (_flavor.FixedEtherType is not null) { _asm.Emit(Asm.Ja(fail)); return; } // ip6 field in an ipv4 program
            _asm.Emit(Asm.LdxW(R0, R10, L3Proto), Asm.JneImm(R0, t, fail));
        }
        if (d.L4Proto is { } p) _asm.Emit(Asm.LdxW(R0, R10, L4Proto), Asm.JneImm(R0, p, fail));
    }
}
