using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWGEN contents: the ruleset generation and the process that last committed.</summary>
public sealed record Gen : IAttributeSource
{
    public byte Family { get; init; }
    public uint? Id { get; init; }
    public uint? ProcPid { get; init; }
    public string? ProcName { get; init; }
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaGen.Id, NftaGen.ProcPid, NftaGen.ProcName];

    public static Gen Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var g = new Gen
        {
            Family = msg.GenMsg.Family,
            Id = p.U32Be(NftaGen.Id),
            ProcPid = p.U32Be(NftaGen.ProcPid),
            ProcName = p.Str(NftaGen.ProcName, 15),
        };
        return g with { Layout = p.Layout() };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaGen.Id when Id != null: w.PutU32Be(raw, Id.Value); return true;
            case NftaGen.ProcPid when ProcPid != null: w.PutU32Be(raw, ProcPid.Value); return true;
            case NftaGen.ProcName when ProcName != null: AttrWriter.PutString(w, raw, ProcName); return true;
            default: return false;
        }
    }
}
