using Nft.Bytecode.Expressions;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWSET / DELSET, as nf_tables_newset and nf_tables_delset.</summary>
internal sealed partial class Transaction
{
    const uint DataReservedMask = 0xffffff00;

    void NewSet(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaSet.Max);
        if (!a.Has(NftaSet.Table) || !a.Has(NftaSet.Name) || !a.Has(NftaSet.KeyLen) || !a.Has(NftaSet.Id))
            throw Err(Errno.EINVAL);
        uint ktype = a.TryGet(NftaSet.KeyType, out var kta) ? U32(kta) : 0;
        if ((ktype & DataReservedMask) == DataReservedMask) throw Err(Errno.EINVAL);
        uint klen = U32(a[NftaSet.KeyLen]);
        if (klen == 0 || klen > NftLimits.DataValueMaxLen) throw Err(Errno.EINVAL);
        uint flags = 0;
        if (a.TryGet(NftaSet.Flags, out var fa))
        {
            flags = U32(fa);
            if ((flags & ~(uint)NftSetFlags.Mask) != 0) throw Err(Errno.EOPNOTSUPP);
            if ((flags & ((uint)NftSetFlags.Map | (uint)NftSetFlags.Object)) == ((uint)NftSetFlags.Map | (uint)NftSetFlags.Object)) throw Err(Errno.EOPNOTSUPP);
            if ((flags & ((uint)NftSetFlags.Eval | (uint)NftSetFlags.Object)) == ((uint)NftSetFlags.Eval | (uint)NftSetFlags.Object)) throw Err(Errno.EOPNOTSUPP);
            if ((flags & ((uint)NftSetFlags.Anonymous | (uint)NftSetFlags.Timeout | (uint)NftSetFlags.Eval)) == ((uint)NftSetFlags.Anonymous | (uint)NftSetFlags.Timeout)) throw Err(Errno.EOPNOTSUPP);
            if ((flags & ((uint)NftSetFlags.Constant | (uint)NftSetFlags.Timeout)) == ((uint)NftSetFlags.Constant | (uint)NftSetFlags.Timeout)) throw Err(Errno.EOPNOTSUPP);
        }
        uint? dtype = null, dlen = null;
        if (a.TryGet(NftaSet.DataType, out var dta))
        {
            if ((flags & (uint)NftSetFlags.Map) == 0) throw Err(Errno.EINVAL);
            dtype = U32(dta);
            if ((dtype & DataReservedMask) == DataReservedMask && dtype != Set.VerdictDataType) throw Err(Errno.EINVAL);
            if (dtype != Set.VerdictDataType)
            {
                if (!a.TryGet(NftaSet.DataLen, out var dla)) throw Err(Errno.EINVAL);
                dlen = U32(dla);
                if (dlen == 0 || dlen > NftLimits.DataValueMaxLen) throw Err(Errno.EINVAL);
            }
            else dlen = 16; // sizeof(struct nft_verdict), whatever was sent
        }
        else if ((flags & (uint)NftSetFlags.Map) != 0) throw Err(Errno.EINVAL);
        uint? objType = null;
        if (a.TryGet(NftaSet.ObjType, out var ota))
        {
            if ((flags & (uint)NftSetFlags.Object) == 0) throw Err(Errno.EINVAL);
            objType = U32(ota);
            if (objType == 0 || objType > (uint)NftObjectType.Synproxy) throw Err(Errno.EOPNOTSUPP);
        }
        else if ((flags & (uint)NftSetFlags.Object) != 0) throw Err(Errno.EINVAL);
        ulong? timeout = null;
        if (a.TryGet(NftaSet.Timeout, out var toa))
        {
            if ((flags & (uint)NftSetFlags.Timeout) == 0) throw Err(Errno.EINVAL);
            if ((flags & (uint)NftSetFlags.Anonymous) != 0) throw Err(Errno.EOPNOTSUPP);
            timeout = _ns.Ticks(U64(toa));
        }
        uint? gc = null;
        if (a.TryGet(NftaSet.GcInterval, out var gca))
        {
            if ((flags & (uint)NftSetFlags.Timeout) == 0) throw Err(Errno.EINVAL);
            if ((flags & (uint)NftSetFlags.Anonymous) != 0) throw Err(Errno.EOPNOTSUPP);
            gc = U32(gca);
        }
        uint? policy = null;
        if (a.TryGet(NftaSet.Policy, out var pa))
        {
            policy = U32(pa);
            if (policy > 1) throw Err(Errno.EOPNOTSUPP);
        }
        uint? descSize = null;
        List<uint>? concat = null;
        int fieldCount = 0;
        if (a.TryGet(NftaSet.Desc, out var desc))
        {
            var d = desc.Table(2);
            if (d.TryGet(NftaSetDesc.Size, out var sz)) descSize = U32(sz);
            if (d.TryGet(NftaSetDesc.Concat, out var cc))
            {
                concat = [];
                var r = cc.Nested();
                while (r.TryRead(out var field))
                {
                    fieldCount++;
                    // nft_set_desc_concat_parse: NFTA_LIST_ELEM { NFTA_SET_FIELD_LEN 1..255 }
                    if (field.Type != 1 || !field.Table(1).TryGet(1, out var len)) throw Err(Errno.EINVAL, field.Offset);
                    uint l = U32(len);
                    if (l == 0 || l > byte.MaxValue) throw Err(Errno.EINVAL, len.Offset);
                    concat.Add(l);
                }
            }
            if (fieldCount > 1) { if ((flags & (uint)NftSetFlags.Concat) == 0) throw Err(Errno.EINVAL); }
            else if ((flags & (uint)NftSetFlags.Concat) != 0) throw Err(Errno.EINVAL);
        }
        else if ((flags & (uint)NftSetFlags.Concat) != 0) throw Err(Errno.EINVAL);
        // the size as sent: an existing set takes it as an update (nf_tables_newset), not the default below
        var sentSize = descSize;
        // sets updated from the packet path get a default capacity when none is given
        if (descSize is null or 0 && (flags & (uint)NftSetFlags.Eval) != 0) descSize = 65535;
        // Kept as sent, in dump form: nft reads them back; the backend refuses what it cannot enforce.
        Expression? expr = a.TryGet(NftaSet.Expr, out var sea) ? KernelForm.Template(ExpressionCodec.Decode(sea)) : null;
        IReadOnlyList<Expression>? exprs = expr == null && a.TryGet(NftaSet.Expressions, out sea) ? Templates(sea) : null;
        // the kernel keeps an array of statements and dumps a single one as NFTA_SET_EXPR
        if (exprs is [var single]) (expr, exprs) = (single, null);

        int ti = TableIndex(a, NftaSet.Table, family);
        var t = Work.Tables[ti];
        var nameAttr = a[NftaSet.Name];
        string name = ReadName(nameAttr);
        int si = t.IndexOfSet(name);
        if (si >= 0)
        {
            var s = t.Sets[si];
            if (_req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST, nameAttr.Offset);
            if (_req.Has(NlmFlags.Replace)) throw Err(Errno.EOPNOTSUPP);
            if (s.IsAnonymous) throw Err(Errno.EOPNOTSUPP);
            var old = s.Set;
            if (s.Flags != flags || old.KeyLen != klen || old.KeyType != ktype || old.DataType != dtype || old.DataLen != dlen
                || old.ObjType != objType)
                throw Err(Errno.EEXIST, nameAttr.Offset);
            if (a.TryGet(NftaSet.Id, out var eid)) _setIds[U32(eid)] = (t.Family, t.Name, s.Handle);
            // an update (nft_trans_set_update): a size given (not 0) replaces the set's, also below its element count
            // (adds then fail until fewer are left); committed and notified as a change even when nothing differs
            var updated = sentSize is uint size && size != 0 && size != s.DescSize
                ? s with { Set = old with { Desc = new SetDesc(size, old.Desc?.ConcatFieldLens) } } : s;
            var ut = t with { Sets = t.Sets.SetItem(si, updated) };
            PutTable(ti, ut);
            MarkChanged();
            // the timeout and gc interval as sent (none is 0) take effect at commit: elements added later in this
            // batch still get the old default (nf_tables_commit writes set->timeout); the notification shows the new
            _setUpdates[(t.Family, t.Name, s.Handle)] = (updated.Set, timeout, gc);
            var notified = updated with { Set = updated.Set with { Timeout = timeout, GcInterval = gc } };
            Notify((b, h) => Enc.Set(b, h, ut, notified), (byte)NftMsgType.NewSet, CreateExcl);
            return;
        }
        if (!_req.Has(NlmFlags.Create)) throw Err(Errno.ENOENT);
        if (name.Contains('%')) name = AllocName(t, name);
        byte[]? udata = a.TryGet(NftaSet.UserData, out var ua) ? ua.Payload.ToArray() : null;
        ulong handle = t.Handles.Next();
        var stored = new Set
        {
            Name = name,
            Handle = handle,
            Flags = flags,
            KeyType = ktype,
            KeyLen = klen,
            DataType = dtype,
            DataLen = dlen,
            ObjType = objType,
            Policy = policy,
            Timeout = timeout,
            GcInterval = gc,
            UserData = udata,
            // one field is no concatenation: the kernel neither dumps it nor picks a concatenation backend
            Desc = descSize != null || fieldCount > 1 ? new SetDesc(descSize, fieldCount > 1 ? concat : null) : null,
            Expr = expr,
            Expressions = exprs,
        };
        var set = new SetRecord(stored, Model.ElementSet.Empty);
        var nt = t with { Sets = t.Sets.Add(set) };
        PutTable(ti, nt);
        _setIds[U32(a[NftaSet.Id])] = (t.Family, t.Name, handle);
        _newSets.Add((t.Family, t.Name, handle));
        MarkChanged();
        Notify((b, h) => Enc.Set(b, h, nt, set), (byte)NftMsgType.NewSet, CreateExcl);
    }

    /// <summary>nf_tables_set_alloc_name: "__set%d" becomes the lowest number no set of the table uses.</summary>
    static string AllocName(TableRecord t, string pattern)
    {
        int p = pattern.IndexOf('%');
        if (p + 1 >= pattern.Length || pattern[p + 1] != 'd' || pattern.IndexOf('%', p + 2) >= 0) throw Err(Errno.EINVAL);
        string prefix = pattern[..p], suffix = pattern[(p + 2)..];
        var used = new HashSet<int>();
        foreach (var s in t.Sets)
            if (s.Name.StartsWith(prefix, StringComparison.Ordinal) && s.Name.EndsWith(suffix, StringComparison.Ordinal)
                && s.Name.Length > prefix.Length + suffix.Length
                && int.TryParse(s.Name.AsSpan(prefix.Length, s.Name.Length - prefix.Length - suffix.Length), out int n))
                used.Add(n);
        for (int n = 0; n < 8 * 4096; n++)
            if (!used.Contains(n)) return prefix + n + suffix;
        throw Err(Errno.ENFILE);
    }

    void DelSet(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaSet.Max);
        int ti = TableIndex(a, NftaSet.Table, family);
        var t = Work.Tables[ti];
        int si, attrOff;
        if (a.TryGet(NftaSet.Handle, out var ha))
        {
            attrOff = ha.Offset;
            si = t.IndexOfSet(U64(ha));
        }
        else
        {
            if (!a.TryGet(NftaSet.Name, out var na)) throw Err(Errno.EINVAL);
            attrOff = na.Offset;
            si = t.IndexOfSet(ReadName(na));
        }
        if (si < 0)
        {
            if (destroy) return;
            throw Err(Errno.ENOENT, attrOff);
        }
        var s = t.Sets[si];
        if (SetUse(t, s.Name) > 0 || (_req.Has(NlmFlags.NonRec) && s.Elements.Count > 0)) throw Err(Errno.EBUSY, attrOff);
        var nt = t with { Sets = t.Sets.RemoveAt(si) };
        PutTable(ti, nt);
        MarkChanged();
        Notify((b, h) => Enc.Set(b, h, nt, s), (byte)NftMsgType.DelSet, NlmFlags.None);
    }
}
