using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// objref: applies a named stateful object, either fixed (ImmType + ImmName) or chosen by looking
/// up the key in SetSReg in an object map (SetName / SetId).
/// </summary>
public sealed record ObjRefExpr(uint? ImmType, string? ImmName, uint? SetSReg = null, string? SetName = null, uint? SetId = null) : AttributeExpression
{
    public const ushort NFTA_OBJREF_IMM_TYPE = 1, NFTA_OBJREF_IMM_NAME = 2, NFTA_OBJREF_SET_SREG = 3, NFTA_OBJREF_SET_NAME = 4,
        NFTA_OBJREF_SET_ID = 5;
    public override string Name => "objref";
    protected override ReadOnlySpan<ushort> KernelOrder => IsMap
        ? [NFTA_OBJREF_SET_SREG, NFTA_OBJREF_SET_NAME, NFTA_OBJREF_SET_ID]
        : [NFTA_OBJREF_IMM_NAME, NFTA_OBJREF_IMM_TYPE];

    public bool IsMap => SetSReg != null;

    public static ObjRefExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var e = new ObjRefExpr(p.U32Be(NFTA_OBJREF_IMM_TYPE), p.Str(NFTA_OBJREF_IMM_NAME, NftLimits.ObjNameMax),
            ExprParse.Reg(ref p, NFTA_OBJREF_SET_SREG), p.Str(NFTA_OBJREF_SET_NAME, NftLimits.SetNameMax), p.U32Be(NFTA_OBJREF_SET_ID));
        bool map = e.SetSReg != null && (e.SetName != null || e.SetId != null);
        bool imm = e.ImmName != null && e.ImmType != null;
        if (!map && !imm) throw ExprParse.Invalid(ref p, "objref needs a type and name, or a register and set");
        return e with { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_OBJREF_IMM_TYPE => U32(w, raw, ImmType),
        NFTA_OBJREF_IMM_NAME => Str(w, raw, ImmName),
        NFTA_OBJREF_SET_SREG => U32(w, raw, SetSReg),
        NFTA_OBJREF_SET_NAME => Str(w, raw, SetName),
        NFTA_OBJREF_SET_ID => U32(w, raw, SetId),
        _ => false,
    };
}
