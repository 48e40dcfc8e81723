using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWSETELEM / DELSETELEM, as nf_tables_newsetelem/nft_add_set_elem and nf_tables_delsetelem.</summary>
internal sealed partial class Transaction
{
    (int Ti, int Si) TargetSet(in AttributeTable a, byte family)
    {
        int ti = TableIndex(a, NftaSetElemList.Table, family);
        var t = Work.Tables[ti];
        a.TryGet(NftaSetElemList.Set, out var sa);
        try
        {
            var s = ResolveSet(t, a.Has(NftaSetElemList.Set) ? ReadName(sa) : null,
                a.TryGet(NftaSetElemList.SetId, out var ida) ? U32(ida) : null);
            int si = t.IndexOfSet(s.Handle);
            RefreshPacketPath(ti, si);
            return (ti, si);
        }
        catch (NetlinkException e) when (e.Offset < 0)
        {
            throw Err(e.Errno, a.Has(NftaSetElemList.Set) ? sa.Offset : -1);
        }
    }

    void NewSetElem(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaSetElemList.Max);
        var (ti, si) = TargetSet(a, family);
        var t = Work.Tables[ti];
        var s = t.Sets[si];
        if ((s.Flags & ((uint)NftSetFlags.Constant | (uint)NftSetFlags.Anonymous)) != 0 && SetUse(t, s.Name) > 0) throw Err(Errno.EBUSY);
        if (!a.TryGet(NftaSetElemList.Elements, out var list)) return;
        // one builder for the whole message: no new tree path per element (ElementSet.Builder)
        var elements = s.Elements.ToBuilder();
        var added = new List<ElementRecord>();
        var r = list.Nested();
        while (r.TryRead(out var ea))
        {
            try
            {
                var e = ParseElement(ea, t, s, adding: true);
                // A key not there yet in a set that cannot refuse it (no intervals to overlap, room below its
                // size) is added in one walk of the tree; a key already there takes the checks below.
                if (!s.IsInterval && (s.DescSize is not uint room || room == 0 || elements.Starts < room) && elements.TryAdd(e))
                {
                    added.Add(e);
                    continue;
                }
                bool exists = elements.TryGetValue(e.Id, out var old);
                if (exists && old.ExpiresAtMs is long gone && gone <= _ns.NowMs())
                {
                    elements.Remove(e.Id); // expired: gone for the kernel, the new element takes its place
                    exists = false;
                }
                if (exists)
                {
                    bool clash = (old.Data == null) != (e.Data == null) || (old.Verdict == null) != (e.Verdict == null)
                        || (old.ObjRef == null) != (e.ObjRef == null)
                        || (old.Data != null && !old.Data.AsSpan().SequenceEqual(e.Data))
                        || (old.Verdict != null && (old.Verdict.Code, old.Verdict.Chain) != (e.Verdict!.Code, e.Verdict.Chain))
                        || (old.ObjRef != null && old.ObjRef != e.ObjRef);
                    if (clash || _req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST);
                    // since 6.10 adding an element that exists renews its timeout and expiry (nft_trans_elem_update)
                    if (e.ExpiresAtMs != null && (old.Timeout, old.ExpiresAtMs) != (e.Timeout, e.ExpiresAtMs))
                    {
                        var renewed = old with { Timeout = e.Timeout, ExpiresAtMs = e.ExpiresAtMs, Element = old.Element with { Timeout = e.Element.Timeout } };
                        elements.SetItem(renewed);
                        added.Add(renewed);
                    }
                    continue;
                }
                if (s.DescSize is uint size && size != 0 && !e.IsIntervalEnd && elements.Starts >= size
                    && (s.IsInterval || Collect(t, s, elements) >= size))
                    throw Err(Errno.ENFILE);
                if (s.IsInterval && Overlaps(elements, e)) throw Err(Errno.EEXIST);
                elements.Add(e);
                added.Add(e);
            }
            catch (NetlinkException ex) when (ex.Offset < 0)
            {
                throw Err(ex.Errno, ea.Offset, ex.ExtAck);
            }
        }
        var ns = s with { Elements = elements.ToImmutable() };
        var nt = t with { Sets = t.Sets.SetItem(si, ns) };
        PutTable(ti, nt);
        if (added.Count == 0) return;
        bool newSet = _newSets.Contains((t.Family, t.Name, s.Handle));
        if (!newSet) foreach (var e in added) TrackElement(t, s, e, added: true);
        MarkChanged(structure: newSet);
        // one notification per element, as nf_tables_setelem_notify sends them, from one encoder for the message
        NotifyEach(added.Count, (b, h, i) =>
        {
            var tok = Enc.BeginElements(b, h, nt, ns);
            Enc.Element(b, added[i]);
            Enc.EndElements(b, tok);
        }, (byte)NftMsgType.NewSetElem, CreateExcl);
        if (ValidateEachRule && s.IsVerdictMap) ChainValidator.Validate(nt);
    }

    /// <summary>
    /// A full set without its expired elements: the kernel counts an expired element against `size` until its
    /// garbage collection (every second or so, asynchronously) takes it out, and the emulation has none, so a set
    /// that filled with elements that have since expired would refuse every add (ENFILE) for good. They are
    /// taken out here, as collected, and the backend deletes them from its maps; no notification (the kernel's
    /// GC sends none). Interval sets are left alone (a range's start and end go together). Returns the elements
    /// that count against the size then.
    /// </summary>
    int Collect(TableRecord t, SetRecord s, ElementSet.Builder elements)
    {
        var now = _ns.NowMs();
        bool newSet = _newSets.Contains((t.Family, t.Name, s.Handle));
        foreach (var x in elements.Where(x => x.ExpiresAtMs is long at && at <= now).ToList())
        {
            elements.Remove(x.Id);
            if (!newSet) TrackElement(t, s, x, added: false);
        }
        return elements.Starts;
    }

    /// <summary>
    /// The rbtree backend refuses a start or end that falls strictly inside an existing range
    /// (ENOTEMPTY, reported as EEXIST): the neighbours of the new key are a range's start below it
    /// and that range's end above it.
    /// </summary>
    static bool Overlaps(ElementSet.Builder elements, ElementRecord e)
    {
        if (e.Id.KeyEnd != null || (e.Flags & (uint)NftSetElemFlags.Catchall) != 0) return false;
        var (below, above) = elements.Around(e.Key);
        return below is { IsIntervalEnd: false } && (below.Flags & (uint)NftSetElemFlags.Catchall) == 0
            && below.Key.AsSpan().SequenceCompareTo(e.Key) < 0 && above is { IsIntervalEnd: true };
    }

    ElementRecord ParseElement(NetlinkAttribute ea, TableRecord t, SetRecord s, bool adding)
    {
        // the element's and its values' attribute tables on the stack: a message may hold a million elements
        Span<AttributeTable.Slot> slots = stackalloc AttributeTable.Slot[NftaSetElem.Max + 1];
        var e = ea.Table(slots);
        uint flags = 0;
        if (e.TryGet(NftaSetElem.Flags, out var fa))
        {
            flags = U32(fa);
            if ((flags & ~((uint)NftSetElemFlags.IntervalEnd | (uint)NftSetElemFlags.Catchall)) != 0) throw Err(Errno.EOPNOTSUPP);
            if ((flags & (uint)NftSetElemFlags.IntervalEnd) != 0 && !s.IsInterval) throw Err(Errno.EINVAL);
        }
        bool catchAll = (flags & (uint)NftSetElemFlags.Catchall) != 0;
        if (catchAll == e.Has(NftaSetElem.Key)) throw Err(Errno.EINVAL);
        bool end = (flags & (uint)NftSetElemFlags.IntervalEnd) != 0;
        if (adding)
        {
            if (s.IsMap) { if (!e.Has(NftaSetElem.Data) && !end) throw Err(Errno.EINVAL); }
            else if (e.Has(NftaSetElem.Data)) throw Err(Errno.EINVAL);
            if ((s.Flags & (uint)NftSetFlags.Object) != 0) { if (!e.Has(NftaSetElem.ObjRef) && !end) throw Err(Errno.EINVAL); }
            else if (e.Has(NftaSetElem.ObjRef)) throw Err(Errno.EINVAL);
            if (end && (e.Has(NftaSetElem.Data) || e.Has(NftaSetElem.ObjRef) || e.Has(NftaSetElem.Timeout)
                        || e.Has(NftaSetElem.Expiration) || e.Has(NftaSetElem.UserData) || e.Has(NftaSetElem.Expr)
                        || e.Has(NftaSetElem.KeyEnd) || e.Has(NftaSetElem.Expressions)))
                throw Err(Errno.EINVAL);
        }
        ulong? timeout = null;
        bool ownTimeout = false;
        if (adding && e.TryGet(NftaSetElem.Timeout, out var toa))
        {
            if ((s.Flags & (uint)NftSetFlags.Timeout) == 0) throw Err(Errno.EINVAL);
            timeout = _ns.Ticks(U64(toa));
            ownTimeout = true;
        }
        else if ((s.Flags & (uint)NftSetFlags.Timeout) != 0 && !end) timeout = s.Set.Timeout;
        long? expires = null;
        if (adding && e.TryGet(NftaSetElem.Expiration, out var exa))
        {
            if ((s.Flags & (uint)NftSetFlags.Timeout) == 0) throw Err(Errno.EINVAL);
            if (timeout is null or 0 && !ownTimeout) throw Err(Errno.EOPNOTSUPP);
            expires = _ns.NowMs() + (long)Math.Min(_ns.Ticks(U64(exa)), timeout ?? 0);
        }
        // an own timeout that rounds down to no jiffy at all expires at once, as the kernel's does
        else if (timeout is ulong to && (to != 0 || ownTimeout)) expires = _ns.NowMs() + (long)to;
        if (timeout == 0) timeout = null;

        byte[] key = catchAll ? [] : ParseValue(e[NftaSetElem.Key], s.KeyLen);
        byte[]? keyEnd = e.TryGet(NftaSetElem.KeyEnd, out var kea) ? ParseValue(kea, s.KeyLen) : null;
        NftData? data = null;
        if (adding && e.TryGet(NftaSetElem.Data, out var da))
        {
            if (s.IsVerdictMap)
            {
                if (NftDataCodec.Decode(da) is not VerdictData v) throw Err(Errno.EINVAL);
                var (code, chain) = CheckVerdict(v.Verdict, t);
                data = new VerdictData(new Verdict(code, chain));
            }
            else data = new ValueData(ParseValue(da, s.Set.DataLen ?? 0));
        }
        string? objRef = null;
        if (adding && e.TryGet(NftaSetElem.ObjRef, out var oa))
        {
            objRef = ReadName(oa);
            if (t.IndexOfObject(objRef, s.Set.ObjType ?? 0) < 0) throw Err(Errno.ENOENT);
        }
        byte[]? udata = adding && e.TryGet(NftaSetElem.UserData, out var ua) ? ua.Payload.ToArray() : null;
        Expression? expr = null;
        IReadOnlyList<Expression>? exprs = null;
        if (adding && e.TryGet(NftaSetElem.Expr, out var xa)) expr = KernelForm.Template(ExpressionCodec.Decode(xa));
        else if (adding && e.TryGet(NftaSetElem.Expressions, out xa)) exprs = Templates(xa);
        else if (adding && !end)
        {
            // Elements of a set with expressions get their own instances of them (nft_set_elem_expr_setup);
            // without the set's framing (its NFTA_SET_EXPR nest type), which is not the element's attribute
            expr = s.Set.Expr is { } template ? template with { Framing = null } : null;
            exprs = s.Set.Expressions;
        }
        var element = new SetElement
        {
            Key = catchAll ? null : new ValueData(key),
            KeyEnd = keyEnd != null ? new ValueData(keyEnd) : null,
            Data = data,
            Expr = expr,
            Expressions = exprs,
            ObjRef = objRef,
            Flags = flags == 0 ? null : flags,
            // the dump shows an element's timeout only where it differs from the set's
            Timeout = timeout is ulong own && own != (s.Set.Timeout ?? 0) ? own : null,
            UserData = udata,
        };
        return new ElementRecord(new ElementKey(key, keyEnd, flags), element, timeout, expires)
        {
            InsertSeq = ++_ns.ElementSeq,
        };
    }

    /// <summary>A list of statements (NFTA_LIST_ELEM nests) as templates in their dump form.</summary>
    static List<Expression> Templates(NetlinkAttribute list)
    {
        var result = new List<Expression>();
        var r = list.Nested();
        while (r.TryRead(out var x)) result.Add(KernelForm.Template(ExpressionCodec.Decode(x)));
        return result;
    }

    /// <summary>nft_data_init for a value: NFTA_DATA_VALUE of exactly the set's length.</summary>
    static byte[] ParseValue(NetlinkAttribute nest, uint len)
    {
        Span<AttributeTable.Slot> slots = stackalloc AttributeTable.Slot[NftaData.Verdict + 1];
        var d = nest.Table(slots);
        if (!d.TryGet(NftaData.Value, out var v)) throw Err(Errno.EINVAL);
        if (v.Payload.Length == 0 || v.Payload.Length > NftLimits.DataValueMaxLen) throw Err(Errno.EINVAL);
        if (v.Payload.Length != len) throw Err(Errno.EINVAL);
        return v.Payload.ToArray();
    }

    void DelSetElem(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaSetElemList.Max);
        var (ti, si) = TargetSet(a, family);
        var t = Work.Tables[ti];
        var s = t.Sets[si];
        if ((s.Flags & (uint)NftSetFlags.Constant) != 0 && SetUse(t, s.Name) > 0) throw Err(Errno.EBUSY);
        var elements = s.Elements;
        var removed = new List<ElementRecord>();
        if (!a.TryGet(NftaSetElemList.Elements, out var list))
        {
            removed.AddRange(elements);
            elements = elements.Clear();
        }
        else
        {
            var remaining = elements.ToBuilder();
            var r = list.Nested();
            while (r.TryRead(out var ea))
            {
                try
                {
                    var e = ParseElement(ea, t, s, adding: false);
                    if (!remaining.TryGetValue(e.Id, out var old))
                    {
                        if (destroy) continue;
                        throw Err(Errno.ENOENT);
                    }
                    remaining.Remove(e.Id);
                    removed.Add(old);
                }
                catch (NetlinkException ex) when (ex.Offset < 0)
                {
                    throw Err(ex.Errno, ea.Offset, ex.ExtAck);
                }
            }
            elements = remaining.ToImmutable();
        }
        var ns = s with { Elements = elements };
        var nt = t with { Sets = t.Sets.SetItem(si, ns) };
        PutTable(ti, nt);
        if (removed.Count == 0) return;
        foreach (var e in removed) TrackElement(t, s, e, added: false);
        MarkChanged(structure: false);
        foreach (var e in removed)
        {
            var shown = e.Element;
            _liveCaptures.Add(() => shown = Enc.WithLiveState(t, s, e));
            Notify((b, h) =>
            {
                var tok = Enc.BeginElements(b, h, nt, ns);
                Enc.Element(b, e, shown);
                Enc.EndElements(b, tok);
            }, (byte)NftMsgType.DelSetElem, NlmFlags.None);
        }
    }
}
