using Nft.Bytecode.Expressions;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWOBJ / DELOBJ for the stateful objects bpfilter-nft supports: counter, quota, limit.</summary>
internal sealed partial class Transaction
{
    static string ObjKind(uint type) => type switch
    {
        (uint)NftObjectType.Counter => "counter", (uint)NftObjectType.Quota => "quota", (uint)NftObjectType.Limit => "limit",
        (uint)NftObjectType.CtHelper => "ct helper", (uint)NftObjectType.Connlimit => "connlimit", (uint)NftObjectType.Tunnel => "tunnel",
        (uint)NftObjectType.CtTimeout => "ct timeout", (uint)NftObjectType.Secmark => "secmark", (uint)NftObjectType.CtExpect => "ct expectation",
        (uint)NftObjectType.Synproxy => "synproxy", _ => "",
    };

    void NewObj(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaObj.Max);
        if (!a.Has(NftaObj.Type) || !a.TryGet(NftaObj.Name, out var na) || !a.TryGet(NftaObj.Data, out var da))
            throw Err(Errno.EINVAL);
        int ti = TableIndex(a, NftaObj.Table, family);
        var t = Work.Tables[ti];
        uint type = U32(a[NftaObj.Type]);
        string name = ReadName(na);
        int oi = t.IndexOfObject(name, type);
        if (oi >= 0)
        {
            if (_req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST, na.Offset);
            if (_req.Has(NlmFlags.Replace)) throw Err(Errno.EOPNOTSUPP);
            if (type != (uint)NftObjectType.Quota) return; // only quota has an update operation
            var old = t.Objects[oi];
            var upd = old with { Object = old.Object with { Data = State(type, da) } };
            var nt2 = t with { Objects = t.Objects.SetItem(oi, upd) };
            PutTable(ti, nt2);
            MarkChanged();
            Notify((b, h) => Enc.Object(b, h, nt2, upd, (uint)ObjectUse(nt2, upd)), (byte)NftMsgType.NewObj, CreateExcl);
            return;
        }
        string kind = ObjKind(type);
        if (kind.Length == 0) throw Err(Errno.ENOENT);
        if (type is not ((uint)NftObjectType.Counter or (uint)NftObjectType.Quota or (uint)NftObjectType.Limit) && _ns.Options.RefuseOutOfScope)
            throw Err(Errno.EOPNOTSUPP, a[NftaObj.Type].Offset, $"bpfilter-nft: {kind} objects are not supported");
        var state = State(type, da);
        CounterCell? cell = state switch
        {
            CounterExpr c => new CounterCell(c.Packets ?? 0, c.Bytes ?? 0),
            QuotaExpr q => new CounterCell(0, q.Consumed ?? 0),
            _ => null,
        };
        ulong handle = t.Handles.Next();
        byte[]? udata = a.TryGet(NftaObj.UserData, out var ua) ? ua.Payload.ToArray() : null;
        var obj = new ObjectRecord(new NftObject { Name = name, Type = type, Handle = handle, Data = state, UserData = udata }, cell);
        var nt = t with { Objects = t.Objects.Add(obj) };
        PutTable(ti, nt);
        MarkChanged();
        Notify((b, h) => Enc.Object(b, h, nt, obj, 0), (byte)NftMsgType.NewObj, CreateExcl);
    }

    /// <summary>
    /// NFTA_OBJ_DATA as the expression of the object's kind, in dump form. Kinds Nft.Bytecode does not
    /// type stay opaque, laid out as the kernel dumps them.
    /// </summary>
    static Expression State(uint type, NetlinkAttribute data)
    {
        string kind = NftObject.KindOf(type);
        Expression? typed;
        try
        {
            typed = ExpressionCodec.DecodeData(kind, data);
        }
        catch (NetlinkException e)
        {
            // the object's init refuses it; nf_tables_newobj blames no attribute
            throw Err(e.Errno, -1, e.ExtAck);
        }
        return typed is { } x ? KernelForm.Of(x) : KernelForm.Opaque(kind, data.Payload);
    }

    void DelObj(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaObj.Max);
        if (!a.Has(NftaObj.Type) || (!a.Has(NftaObj.Name) && !a.Has(NftaObj.Handle))) throw Err(Errno.EINVAL);
        int ti = TableIndex(a, NftaObj.Table, family);
        var t = Work.Tables[ti];
        uint type = U32(a[NftaObj.Type]);
        int oi, attrOff;
        if (a.TryGet(NftaObj.Handle, out var ha))
        {
            attrOff = ha.Offset;
            oi = t.IndexOfObject(U64(ha));
            if (oi >= 0 && t.Objects[oi].Type != type) oi = -1;
        }
        else
        {
            var na = a[NftaObj.Name];
            attrOff = na.Offset;
            oi = t.IndexOfObject(ReadName(na), type);
        }
        if (oi < 0)
        {
            if (destroy) return;
            throw Err(Errno.ENOENT, attrOff);
        }
        var o = t.Objects[oi];
        if (ObjectUse(t, o) > 0) throw Err(Errno.EBUSY, attrOff);
        var nt = t with { Objects = t.Objects.RemoveAt(oi) };
        PutTable(ti, nt);
        MarkChanged();
        Notify((b, h) => Enc.Object(b, h, nt, o, 0), (byte)NftMsgType.DelObj, NlmFlags.None);
    }
}
