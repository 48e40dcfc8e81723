using Nft.Bytecode.Expressions;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>
/// NEWOBJ / GETOBJ / DELOBJ contents: a named stateful object. Its NFTA_OBJ_DATA holds the same
/// attributes as the expression of the same kind, so the state is decoded as that expression record
/// (<see cref="CounterExpr"/>, <see cref="QuotaExpr"/>, <see cref="LimitExpr"/>, ...); types without a
/// typed expression stay <see cref="OpaqueExpr"/>.
/// </summary>
public sealed record NftObject : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public string? Name { get; init; }
    public uint? Type { get; init; }
    public Expression? Data { get; init; }
    public uint? Use { get; init; }
    public ulong? Handle { get; init; }
    public byte[]? UserData { get; init; }
    public AttributeLayout? Layout { get; init; }

    public NftObjectType ObjectType => (NftObjectType)(Type ?? 0);

    static readonly ushort[] KernelOrder = [NftaObj.Table, NftaObj.Name, NftaObj.Type, NftaObj.Handle, NftaObj.Use,
        NftaObj.Data, NftaObj.UserData];

    /// <summary>Expression kind whose attributes an object type's NFTA_OBJ_DATA shares.</summary>
    public static string KindOf(uint type) => (NftObjectType)type switch
    {
        NftObjectType.Counter => "counter",
        NftObjectType.Quota => "quota",
        NftObjectType.Limit => "limit",
        NftObjectType.Connlimit => "connlimit",
        NftObjectType.Synproxy => "synproxy",
        NftObjectType.CtHelper => "ct helper",
        NftObjectType.Tunnel => "tunnel object",
        NftObjectType.CtTimeout => "ct timeout",
        NftObjectType.Secmark => "secmark",
        NftObjectType.CtExpect => "ct expectation",
        _ => $"object {type}",
    };

    public static NftObject Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        uint? type = p.U32Be(NftaObj.Type);
        var o = new NftObject
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaObj.Table, NftLimits.TableNameMax),
            Name = p.Str(NftaObj.Name, NftLimits.ObjNameMax),
            Type = type,
            Data = p.TryGet(NftaObj.Data, out var d) ? DecodeData(type, d) : null,
            Use = p.U32Be(NftaObj.Use),
            Handle = p.U64Be(NftaObj.Handle),
            UserData = p.Bytes(NftaObj.UserData, NftLimits.UserDataMaxLen),
        };
        return o with { Layout = p.Layout() };
    }

    static Expression DecodeData(uint? type, NetlinkAttribute data)
    {
        string kind = type is { } t ? KindOf(t) : "object";
        // nft's GETOBJ_RESET filters by type with an empty NFTA_OBJ_DATA: no state, nothing to type
        if (data.Length == 0) return new OpaqueExpr(kind, []) { Layout = new AttributeLayout(data.RawType, []) };
        return ExpressionCodec.DecodeData(kind, data)
            ?? new OpaqueExpr(kind, data.Payload.ToArray()) { Layout = new AttributeLayout(data.RawType, []) };
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaObj.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaObj.Name when Name != null: AttrWriter.PutString(w, raw, Name); return true;
            case NftaObj.Type when Type != null: w.PutU32Be(raw, Type.Value); return true;
            case NftaObj.Data when Data != null:
                var t = AttrWriter.BeginNest(w, raw);
                Data.EncodeData(w, f);
                w.EndNested(t);
                return true;
            case NftaObj.Use when Use != null: w.PutU32Be(raw, Use.Value); return true;
            case NftaObj.Handle when Handle != null: w.PutU64Be(raw, Handle.Value); return true;
            case NftaObj.UserData when UserData != null: w.PutRaw(raw, UserData); return true;
            default: return false;
        }
    }

    public bool Equals(NftObject? o) => o is not null && Family == o.Family && Table == o.Table && Name == o.Name && Type == o.Type
        && Equals(Data, o.Data) && Use == o.Use && Handle == o.Handle && Bin.Eq(UserData, o.UserData) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Table, Name, Handle);
}
