using Nft.Bytecode.Objects;
using Nft.Bytecode.Wire;
using Nft.Netlink;

namespace Nft.Bytecode;

/// <summary>Decodes an nf_tables message into the object record its type carries, and back.</summary>
public static class NftMessage
{
    /// <summary>The record type an nf_tables message type carries, or null (NFT_MSG_TRACE, unknown types).</summary>
    public static Type? RecordType(NftMsgType t) => t switch
    {
        NftMsgType.NewTable or NftMsgType.GetTable or NftMsgType.DelTable or NftMsgType.DestroyTable => typeof(Table),
        NftMsgType.NewChain or NftMsgType.GetChain or NftMsgType.DelChain or NftMsgType.DestroyChain => typeof(Chain),
        NftMsgType.NewRule or NftMsgType.GetRule or NftMsgType.DelRule or NftMsgType.DestroyRule or NftMsgType.GetRuleReset => typeof(Rule),
        NftMsgType.NewSet or NftMsgType.GetSet or NftMsgType.DelSet or NftMsgType.DestroySet => typeof(Set),
        NftMsgType.NewSetElem or NftMsgType.GetSetElem or NftMsgType.DelSetElem or NftMsgType.DestroySetElem
            or NftMsgType.GetSetElemReset => typeof(SetElementList),
        NftMsgType.NewGen or NftMsgType.GetGen => typeof(Gen),
        NftMsgType.NewObj or NftMsgType.GetObj or NftMsgType.DelObj or NftMsgType.DestroyObj or NftMsgType.GetObjReset => typeof(NftObject),
        NftMsgType.NewFlowtable or NftMsgType.GetFlowtable or NftMsgType.DelFlowtable or NftMsgType.DestroyFlowtable => typeof(Flowtable),
        _ => null,
    };

    /// <summary>Decodes an nf_tables message; EOPNOTSUPP for a type without a record.</summary>
    public static object Decode(NetlinkMessage msg)
    {
        if (!msg.IsNfTables)
            throw new NetlinkException(Errno.EINVAL, "not an nf_tables message", 4);
        var t = (NftMsgType)Nfnl.Msg(msg.Header.Type);
        Type? rt = RecordType(t);
        if (rt == typeof(Table)) return Table.Decode(msg);
        if (rt == typeof(Chain)) return Chain.Decode(msg);
        if (rt == typeof(Rule)) return Rule.Decode(msg);
        if (rt == typeof(Set)) return Set.Decode(msg);
        if (rt == typeof(SetElementList)) return SetElementList.Decode(msg);
        if (rt == typeof(Gen)) return Gen.Decode(msg);
        if (rt == typeof(NftObject)) return NftObject.Decode(msg);
        if (rt == typeof(Flowtable)) return Flowtable.Decode(msg);
        throw new NetlinkException(Errno.EOPNOTSUPP, $"nf_tables message type {(byte)t} has no record", 4);
    }

    /// <summary>Writes the attributes of a record returned by <see cref="Decode"/> (after the caller's nlmsghdr and nfgenmsg).</summary>
    public static void EncodeAttributes(NetlinkWriter w, object record, WireFormat format = WireFormat.AsDecoded)
    {
        switch (record)
        {
            case Table x: x.Encode(w, format); break;
            case Chain x: x.Encode(w, format); break;
            case Rule x: x.Encode(w, format); break;
            case Set x: x.Encode(w, format); break;
            case SetElementList x: x.Encode(w, format); break;
            case Gen x: x.Encode(w, format); break;
            case NftObject x: x.Encode(w, format); break;
            case Flowtable x: x.Encode(w, format); break;
            default: throw new ArgumentException($"not an nf_tables record: {record.GetType().Name}", nameof(record));
        }
    }

    /// <summary>Writes a whole message: nlmsghdr, nfgenmsg and the record's attributes.</summary>
    public static void Write(NetlinkWriter w, NftMsgType type, NlmFlags flags, uint seq, uint portId, byte family, ushort resId,
        object record, WireFormat format = WireFormat.AsDecoded)
    {
        var t = w.BeginNfMessage(Nfnl.SubsysNftables, (byte)type, flags, seq, portId, family, resId);
        EncodeAttributes(w, record, format);
        w.EndMessage(t);
    }
}
