using Nft.Netlink;

namespace Nft.Bytecode.Expressions;

/// <summary>
/// One nf_tables expression (NFTA_LIST_ELEM: NFTA_EXPR_NAME + NFTA_EXPR_DATA). Concrete kinds are
/// immutable records, one file each, holding their own Decode and EncodeData.
/// </summary>
public abstract record Expression
{
    /// <summary>The kernel's expression name ("payload", "cmp", ...).</summary>
    public abstract string Name { get; }

    /// <summary>Writes the attributes inside NFTA_EXPR_DATA (the nest itself is written by the codec).</summary>
    public abstract void EncodeData(NetlinkWriter w);
}
