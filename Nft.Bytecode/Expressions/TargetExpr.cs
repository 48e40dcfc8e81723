using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>target: an xtables target run through nft_compat (name, revision and the target's own info blob).</summary>
public sealed record TargetExpr(string TargetName, uint Rev, byte[] Info) : AttributeExpression
{
    public const ushort NFTA_TARGET_NAME = 1, NFTA_TARGET_REV = 2, NFTA_TARGET_INFO = 3;
    public override string Name => "target";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_TARGET_NAME, NFTA_TARGET_REV, NFTA_TARGET_INFO];

    public static TargetExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var targetName = p.Str(NFTA_TARGET_NAME, 28) ?? throw p.Missing("NFTA_TARGET_NAME");
        var rev = p.U32Be(NFTA_TARGET_REV) ?? throw p.Missing("NFTA_TARGET_REV");
        var info = p.Bytes(NFTA_TARGET_INFO, int.MaxValue) ?? throw p.Missing("NFTA_TARGET_INFO");
        return new TargetExpr(targetName, rev, info) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_TARGET_NAME => Str(w, raw, TargetName),
        NFTA_TARGET_REV => U32(w, raw, Rev),
        NFTA_TARGET_INFO => Blob(w, raw, Info),
        _ => false,
    };

    public bool Equals(TargetExpr? o) => o is not null && Equals(TargetName, o.TargetName) && Equals(Rev, o.Rev) && Bin.Eq(Info, o.Info) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Name, TargetName);
}
