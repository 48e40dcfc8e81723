using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWTABLE / GETTABLE / DELTABLE contents. Every attribute is optional, as on the wire.</summary>
public sealed record Table : IAttributeSource
{
    public byte Family { get; init; }
    public string? Name { get; init; }
    public uint? Flags { get; init; }
    public uint? Use { get; init; }
    public ulong? Handle { get; init; }
    public byte[]? UserData { get; init; }
    public uint? Owner { get; init; }
    public AttributeLayout? Layout { get; init; }

    public NftTableFlags TableFlags => (NftTableFlags)(Flags ?? 0);

    static readonly ushort[] KernelOrder = [NftaTable.Name, NftaTable.Use, NftaTable.Handle, NftaTable.Flags, NftaTable.Owner, NftaTable.UserData];

    public static Table Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        return new Table
        {
            Family = msg.GenMsg.Family,
            Name = p.Str(NftaTable.Name, NftLimits.TableNameMax),
            Flags = p.U32Be(NftaTable.Flags),
            Use = p.U32Be(NftaTable.Use),
            Handle = p.U64Be(NftaTable.Handle),
            UserData = p.Bytes(NftaTable.UserData, NftLimits.UserDataMaxLen),
            Owner = p.U32Be(NftaTable.Owner),
            Layout = p.Layout(),
        };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaTable.Name when Name != null: AttrWriter.PutString(w, raw, Name); return true;
            case NftaTable.Flags when Flags != null: w.PutU32Be(raw, Flags.Value); return true;
            case NftaTable.Use when Use != null: w.PutU32Be(raw, Use.Value); return true;
            case NftaTable.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaTable.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            case NftaTable.Owner when Owner != null: w.PutU32Be(raw, Owner.Value); return true;
            default: return false;
        }
    }

    public bool Equals(Table? o) => o is not null && Family == o.Family && Name == o.Name && Flags == o.Flags && Use == o.Use
        && Handle == o.Handle && Bin.Eq(UserData, o.UserData) && Owner == o.Owner && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Name, Handle);
}
