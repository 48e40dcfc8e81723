using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode.Objects;

/// <summary>NEWSETELEM / GETSETELEM / DELSETELEM contents: the set (by name or batch id) and its elements.</summary>
public sealed record SetElementList : IAttributeSource
{
    public byte Family { get; init; }
    public string? Table { get; init; }
    public string? Set { get; init; }
    public uint? SetId { get; init; }
    public IReadOnlyList<SetElement>? Elements { get; init; }
    public AttributeLayout? Layout { get; init; }

    static readonly ushort[] KernelOrder = [NftaSetElemList.Table, NftaSetElemList.Set, NftaSetElemList.Elements, NftaSetElemList.SetId];

    public static SetElementList Decode(NetlinkMessage msg)
    {
        var p = AttrParser.Of(msg);
        var l = new SetElementList
        {
            Family = msg.GenMsg.Family,
            Table = p.Str(NftaSetElemList.Table, NftLimits.TableNameMax),
            Set = p.Str(NftaSetElemList.Set, NftLimits.SetNameMax),
            SetId = p.U32Be(NftaSetElemList.SetId),
            Elements = p.TryGet(NftaSetElemList.Elements, out var es) ? ReadElements(es) : null,
        };
        return l with { Layout = p.Layout() };
    }

    static List<SetElement> ReadElements(NetlinkAttribute nest)
    {
        var list = new List<SetElement>();
        var r = nest.Nested();
        while (r.TryRead(out var a))
        {
            try
            {
                list.Add(SetElement.Decode(a));
            }
            catch (NetlinkException e) when (e.Offset != a.Offset)
            {
                // nf_tables blames the element that failed
                throw new NetlinkException(e.Errno, e.ExtAck, a.Offset);
            }
        }
        return list;
    }

    public void Encode(NetlinkWriter w, WireFormat format = WireFormat.AsDecoded) =>
        AttrWriter.Write(w, Layout, KernelOrder, this, format);

    bool IAttributeSource.WriteAttribute(NetlinkWriter w, AttrSlot raw, WireFormat f)
    {
        switch (raw & NlaFlags.TypeMask)
        {
            case NftaSetElemList.Table when Table != null: AttrWriter.PutString(w, raw, Table); return true;
            case NftaSetElemList.Set when Set != null: AttrWriter.PutString(w, raw, Set); return true;
            case NftaSetElemList.SetId when SetId != null: w.PutU32Be(raw, SetId.Value); return true;
            case NftaSetElemList.Elements when Elements != null:
                var t = AttrWriter.BeginNest(w, raw);
                ushort item = AttrLists.ItemType(raw, NftaList.Elem);
                foreach (var e in Elements) e.Encode(w, item, f);
                w.EndNested(t);
                return true;
            default: return false;
        }
    }

    public bool Equals(SetElementList? o) => o is not null && Family == o.Family && Table == o.Table && Set == o.Set
        && SetId == o.SetId && Bin.Eq(Elements, o.Elements) && Equals(Layout, o.Layout);
    public override int GetHashCode() => HashCode.Combine(Family, Table, Set, Elements?.Count);
}
