using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// An expression kind the model does not type: its NFTA_EXPR_DATA payload is kept as is so it
/// round-trips byte for byte. Never enforced: the lifter refuses it by name.
/// </summary>
public sealed record OpaqueExpr(string Kind, byte[] Data) : Expression
{
    public override string Name => Kind;
    public override void EncodeData(NetlinkWriter w) => w.WriteRaw(Data);
    public bool Equals(OpaqueExpr? o) => o is not null && Kind == o.Kind && Data.AsSpan().SequenceEqual(o.Data);
    public override int GetHashCode() => HashCode.Combine(Kind, Data.Length);
}
