using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>match: an xtables match run through nft_compat (name, revision and the match's own info blob).</summary>
public sealed record MatchExpr(string MatchName, uint Rev, byte[] Info) : AttributeExpression
{
    public const ushort NFTA_MATCH_NAME = 1, NFTA_MATCH_REV = 2, NFTA_MATCH_INFO = 3;
    public override string Name => "match";
    protected override ReadOnlySpan<ushort> KernelOrder => [NFTA_MATCH_NAME, NFTA_MATCH_REV, NFTA_MATCH_INFO];

    public static MatchExpr Decode(NetlinkAttribute data)
    {
        var p = AttrParser.Of(data);
        var matchName = p.Str(NFTA_MATCH_NAME, 28) ?? throw p.Missing("NFTA_MATCH_NAME");
        var rev = p.U32Be(NFTA_MATCH_REV) ?? throw p.Missing("NFTA_MATCH_REV");
        var info = p.Bytes(NFTA_MATCH_INFO, int.MaxValue) ?? throw p.Missing("NFTA_MATCH_INFO");
        return new MatchExpr(matchName, rev, info) { Layout = p.Layout() };
    }

    protected override bool WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f) => T(raw) switch
    {
        NFTA_MATCH_NAME => Str(w, raw, MatchName),
        NFTA_MATCH_REV => U32(w, raw, Rev),
        NFTA_MATCH_INFO => Blob(w, raw, Info),
        _ => false,
    };

    public bool Equals(MatchExpr? o) => o is not null && Equals(MatchName, o.MatchName) && Equals(Rev, o.Rev) && Bin.Eq(Info, o.Info) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Name, MatchName);
}
