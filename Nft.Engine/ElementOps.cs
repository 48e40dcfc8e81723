using System.Collections.Immutable;
using Nft.Engine.Model;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWSETELEM / DELSETELEM, as nf_tables_newsetelem/nft_add_set_elem and nf_tables_delsetelem.</summary>
internal sealed partial class Transaction
{
    (int Ti, int Si) ElementSet(in AttributeTable a, byte family)
    {
        int ti = TableIndex(a, SetElemListAttr.Table, family);
        var t = Work.Tables[ti];
        a.TryGet(SetElemListAttr.Set, out var sa);
        try
        {
            var s = ResolveSet(t, a.Has(SetElemListAttr.Set) ? ReadName(sa) : null,
                a.TryGet(SetElemListAttr.SetId, out var ida) ? U32(ida) : null);
            return (ti, t.IndexOfSet(s.Handle));
        }
        catch (NetlinkException e) when (e.Offset < 0)
        {
            throw Err(e.Errno, a.Has(SetElemListAttr.Set) ? sa.Offset : -1);
        }
    }

    void NewSetElem(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(SetElemListAttr.Max);
        var (ti, si) = ElementSet(a, family);
        var t = Work.Tables[ti];
        var s = t.Sets[si];
        if ((s.Flags & (SetAttr.FConstant | SetAttr.FAnonymous)) != 0 && SetUse(t, s.Name) > 0) throw Err(Errno.EBUSY);
        if (!a.TryGet(SetElemListAttr.Elements, out var list)) return;
        var elements = s.Elements;
        var added = new List<ElementRecord>();
        var r = list.Nested();
        while (r.TryRead(out var ea))
        {
            try
            {
                var e = ParseElement(ea, t, s, adding: true);
                if (elements.TryGetValue(e.Id, out var old))
                {
                    bool clash = (old.Data == null) != (e.Data == null) || (old.Verdict == null) != (e.Verdict == null)
                        || (old.ObjRef == null) != (e.ObjRef == null)
                        || (old.Data != null && !old.Data.AsSpan().SequenceEqual(e.Data))
                        || (old.Verdict != null && old.Verdict != e.Verdict)
                        || (old.ObjRef != null && old.ObjRef != e.ObjRef);
                    if (clash || _req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST);
                    continue;
                }
                if (s.DescSize is uint size && size != 0 && (e.Flags & SetElemAttr.FIntervalEnd) == 0
                    && elements.Values.Count(x => (x.Flags & SetElemAttr.FIntervalEnd) == 0) >= size)
                    throw Err(Errno.ENFILE);
                if (s.IsInterval && Overlaps(elements, e)) throw Err(Errno.EEXIST);
                elements = elements.Add(e.Id, e);
                added.Add(e);
            }
            catch (NetlinkException ex) when (ex.Offset < 0)
            {
                throw Err(ex.Errno, ea.Offset, ex.ExtAck);
            }
        }
        var ns = s with { Elements = elements };
        var nt = t with { Sets = t.Sets.SetItem(si, ns) };
        PutTable(ti, nt);
        if (added.Count == 0) return;
        bool newSet = _newSets.Contains((t.Family, t.Name, s.Handle));
        if (!newSet) foreach (var e in added) TrackElement(t, s, e, added: true);
        MarkChanged(structure: newSet);
        foreach (var e in added)
            Notify((b, h) =>
            {
                var tok = Enc.BeginElements(b, h, nt, ns);
                Enc.Element(b, ns, e);
                Enc.EndElements(b, tok);
            }, NftMsg.NewSetElem, CreateExcl);
        if (ValidateEachRule && s.IsVerdictMap) ChainValidator.Validate(nt);
    }

    /// <summary>
    /// The rbtree backend refuses a start or end that falls strictly inside an existing range
    /// (ENOTEMPTY, reported as EEXIST).
    /// </summary>
    static bool Overlaps(ImmutableSortedDictionary<ElementKey, ElementRecord> elements, ElementRecord e)
    {
        if (e.Id.KeyEnd != null || (e.Flags & SetElemAttr.FCatchAll) != 0) return false;
        byte[]? start = null;
        foreach (var x in elements.Values)
        {
            if ((x.Flags & SetElemAttr.FCatchAll) != 0) continue;
            if ((x.Flags & SetElemAttr.FIntervalEnd) == 0) { start = x.Key; continue; }
            if (start == null) continue;
            // [start, x.Key): a new key strictly inside it collides
            if (e.Key.AsSpan().SequenceCompareTo(start) > 0 && e.Key.AsSpan().SequenceCompareTo(x.Key) < 0) return true;
            start = null;
        }
        return false;
    }

    ElementRecord ParseElement(NetlinkAttribute ea, TableRecord t, SetRecord s, bool adding)
    {
        var e = ea.Table(SetElemAttr.Max);
        uint flags = 0;
        if (e.TryGet(SetElemAttr.Flags, out var fa))
        {
            flags = U32(fa);
            if ((flags & ~(SetElemAttr.FIntervalEnd | SetElemAttr.FCatchAll)) != 0) throw Err(Errno.EOPNOTSUPP);
            if ((flags & SetElemAttr.FIntervalEnd) != 0 && !s.IsInterval) throw Err(Errno.EINVAL);
        }
        bool catchAll = (flags & SetElemAttr.FCatchAll) != 0;
        if (catchAll == e.Has(SetElemAttr.Key)) throw Err(Errno.EINVAL);
        bool end = (flags & SetElemAttr.FIntervalEnd) != 0;
        if (adding)
        {
            if (s.IsMap) { if (!e.Has(SetElemAttr.Data) && !end) throw Err(Errno.EINVAL); }
            else if (e.Has(SetElemAttr.Data)) throw Err(Errno.EINVAL);
            if ((s.Flags & SetAttr.FObject) != 0) { if (!e.Has(SetElemAttr.ObjRef) && !end) throw Err(Errno.EINVAL); }
            else if (e.Has(SetElemAttr.ObjRef)) throw Err(Errno.EINVAL);
            if (end && (e.Has(SetElemAttr.Data) || e.Has(SetElemAttr.ObjRef) || e.Has(SetElemAttr.Timeout)
                        || e.Has(SetElemAttr.Expiration) || e.Has(SetElemAttr.UserData) || e.Has(SetElemAttr.Expr)
                        || e.Has(SetElemAttr.KeyEnd) || e.Has(SetElemAttr.Expressions)))
                throw Err(Errno.EINVAL);
        }
        ulong? timeout = null;
        if (adding && e.TryGet(SetElemAttr.Timeout, out var toa))
        {
            if ((s.Flags & SetAttr.FTimeout) == 0) throw Err(Errno.EINVAL);
            timeout = U64(toa);
        }
        else if ((s.Flags & SetAttr.FTimeout) != 0 && !end) timeout = s.Timeout;
        long? expires = null;
        if (adding && e.TryGet(SetElemAttr.Expiration, out var exa))
        {
            if ((s.Flags & SetAttr.FTimeout) == 0) throw Err(Errno.EINVAL);
            if (timeout is null or 0) throw Err(Errno.EOPNOTSUPP);
            expires = _ns.NowMs() + (long)Math.Min(U64(exa), timeout.Value);
        }
        else if (timeout is ulong to && to != 0) expires = _ns.NowMs() + (long)to;
        if (timeout == 0) timeout = null;

        byte[] key = catchAll ? [] : ParseValue(e[SetElemAttr.Key], s.KeyLen);
        byte[]? keyEnd = e.TryGet(SetElemAttr.KeyEnd, out var kea) ? ParseValue(kea, s.KeyLen) : null;
        byte[]? data = null;
        ElementVerdict? verdict = null;
        if (adding && e.TryGet(SetElemAttr.Data, out var da))
        {
            var dl = AttrList.Parse(da.Payload, da.PayloadOffset);
            if (s.IsVerdictMap)
            {
                if (dl.Get(DataAttr.Verdict) is not { } v) throw Err(Errno.EINVAL);
                var (code, chain) = ParseVerdict(v, t);
                verdict = new ElementVerdict(code, chain);
            }
            else data = ParseValue(da, s.DataLen ?? 0);
        }
        string? objRef = null;
        if (adding && e.TryGet(SetElemAttr.ObjRef, out var oa))
        {
            objRef = ReadName(oa);
            if (t.IndexOfObject(objRef, s.ObjType ?? 0) < 0) throw Err(Errno.ENOENT);
        }
        byte[]? udata = adding && e.TryGet(SetElemAttr.UserData, out var ua) ? ua.Payload.ToArray() : null;
        byte[]? exprs = null;
        if (adding && (e.TryGet(SetElemAttr.Expr, out var xa) || e.TryGet(SetElemAttr.Expressions, out xa)))
        {
            var b = new NetlinkWriter(xa.Payload.Length + 8);
            b.PutRaw(xa.Type, xa.Type == SetElemAttr.Expr
                ? ExprCanonicalizer.CanonicalNested(xa.Payload.ToArray())
                : ExprCanonicalizer.CanonicalList(xa.Payload.ToArray()));
            exprs = b.ToArray();
        }
        // Elements of a set with expressions get their own instances of them (nft_set_elem_expr_setup).
        if (exprs == null && adding && s.Expressions is { Length: > 4 } se && !end)
        {
            var sa = AttrList.Parse(se, 0).Items[0];
            var b = new NetlinkWriter(se.Length + 8);
            b.PutRaw(sa.Type == SetAttr.Expr ? SetElemAttr.Expr : SetElemAttr.Expressions, sa.Payload);
            exprs = b.ToArray();
        }
        return new ElementRecord(new ElementKey(key, keyEnd, flags), data, verdict, objRef, timeout, expires, udata, exprs)
        {
            InsertSeq = ++_ns.ElementSeq,
        };
    }

    /// <summary>nft_data_init for a value: NFTA_DATA_VALUE of exactly the set's length.</summary>
    static byte[] ParseValue(NetlinkAttribute nest, uint len)
    {
        var d = nest.Table(DataAttr.Verdict);
        if (!d.TryGet(DataAttr.Value, out var v)) throw Err(Errno.EINVAL);
        if (v.Payload.Length == 0 || v.Payload.Length > NftLimits.DataValueMaxLen) throw Err(Errno.EINVAL);
        if (v.Payload.Length != len) throw Err(Errno.EINVAL);
        return v.Payload.ToArray();
    }

    void DelSetElem(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(SetElemListAttr.Max);
        var (ti, si) = ElementSet(a, family);
        var t = Work.Tables[ti];
        var s = t.Sets[si];
        if ((s.Flags & SetAttr.FConstant) != 0 && SetUse(t, s.Name) > 0) throw Err(Errno.EBUSY);
        var elements = s.Elements;
        var removed = new List<ElementRecord>();
        if (!a.TryGet(SetElemListAttr.Elements, out var list))
        {
            removed.AddRange(elements.Values);
            elements = elements.Clear();
        }
        else
        {
            var r = list.Nested();
            while (r.TryRead(out var ea))
            {
                try
                {
                    var e = ParseElement(ea, t, s, adding: false);
                    if (!elements.TryGetValue(e.Id, out var old))
                    {
                        if (destroy) continue;
                        throw Err(Errno.ENOENT);
                    }
                    elements = elements.Remove(e.Id);
                    removed.Add(old);
                }
                catch (NetlinkException ex) when (ex.Offset < 0)
                {
                    throw Err(ex.Errno, ea.Offset, ex.ExtAck);
                }
            }
        }
        var ns = s with { Elements = elements };
        var nt = t with { Sets = t.Sets.SetItem(si, ns) };
        PutTable(ti, nt);
        if (removed.Count == 0) return;
        foreach (var e in removed) TrackElement(t, s, e, added: false);
        MarkChanged(structure: false);
        foreach (var e in removed)
            Notify((b, h) =>
            {
                var tok = Enc.BeginElements(b, h, nt, ns);
                Enc.Element(b, ns, e);
                Enc.EndElements(b, tok);
            }, NftMsg.DelSetElem, NlmFlags.None);
    }
}
