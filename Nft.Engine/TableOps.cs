using System.Collections.Immutable;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWTABLE / DELTABLE, as nf_tables_newtable, nf_tables_updtable and nf_tables_deltable.</summary>
internal sealed partial class Transaction
{
    void NewTable(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaTable.Max);
        if (!a.TryGet(NftaTable.Name, out var na)) throw Err(Errno.EINVAL);
        string name = ReadName(na);
        int i = Work.IndexOfTable(family, name);
        if (i >= 0)
        {
            var t = Work.Tables[i];
            if (t.OwnedByOther(PortId)) throw Err(Errno.EPERM, na.Offset);
            if (_req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST, na.Offset);
            if (_req.Has(NlmFlags.Replace)) throw Err(Errno.EOPNOTSUPP);
            UpdateTable(i, t, a);
            return;
        }
        if (!NfProto.Known(family)) throw Err(Errno.EOPNOTSUPP);
        if (family is NfProto.Bridge or NfProto.Arp && _ns.Options.RefuseOutOfScope)
            throw Err(Errno.EOPNOTSUPP, na.Offset, $"bpfilter-nft: {(family == NfProto.Bridge ? "bridge" : "arp")} tables are not supported");
        uint flags = a.TryGet(NftaTable.Flags, out var fa) ? U32(fa) : 0;
        if ((flags & ~(uint)NftTableFlags.Mask) != 0) throw Err(Errno.EOPNOTSUPP);
        byte[]? udata = a.TryGet(NftaTable.UserData, out var ua) ? ua.Payload.ToArray() : null;
        if (udata is { Length: > NftLimits.UserDataMaxLen }) throw Err(Errno.ERANGE, ua.Offset, "Attribute failed policy validation");
        var stored = new Table
        {
            Family = family,
            Name = name,
            Handle = ++_ns.TableHandle,
            Flags = flags,
            UserData = udata,
            Owner = (flags & (uint)NftTableFlags.Owner) != 0 ? PortId : null,
        };
        var table = new TableRecord(stored, new HandleCounter(),
            ImmutableList<ChainRecord>.Empty, ImmutableList<SetRecord>.Empty, ImmutableList<ObjectRecord>.Empty);
        Work = Work with { Tables = Work.Tables.Add(table) };
        MarkChanged();
        var flagsCopy = CreateExcl;
        Notify((b, h) => Enc.Table(b, h, table), (byte)NftMsgType.NewTable, flagsCopy);
    }

    void UpdateTable(int i, TableRecord t, in AttributeTable a)
    {
        if (!a.TryGet(NftaTable.Flags, out var fa)) return;
        uint flags = U32(fa);
        if ((flags & ~(uint)NftTableFlags.Mask) != 0) throw Err(Errno.EOPNOTSUPP);
        if (flags == t.Flags) return;
        // Ownership can neither be dropped nor taken over by an update.
        if (((t.Flags & (uint)NftTableFlags.Owner) != 0) != ((flags & (uint)NftTableFlags.Owner) != 0)) throw Err(Errno.EOPNOTSUPP);
        var nt = t with { Table = t.Table with { Flags = flags } };
        PutTable(i, nt);
        MarkChanged();
        Notify((b, h) => Enc.Table(b, h, nt), (byte)NftMsgType.NewTable, CreateExcl);
    }

    void DelTable(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaTable.Max);
        bool hasName = a.TryGet(NftaTable.Name, out var na);
        bool hasHandle = a.TryGet(NftaTable.Handle, out var ha);
        if (family == NfProto.Unspec || (!hasName && !hasHandle))
        {
            // nft_flush: every table of the family (all families for AF_UNSPEC) the caller may see
            string? only = hasName ? ReadName(na) : null;
            foreach (var t in Work.Tables.ToArray())
            {
                if (family != NfProto.Unspec && t.Family != family) continue;
                if (t.OwnedByOther(PortId)) continue;
                if (only != null && t.Name != only) continue;
                FlushAndDeleteTable(t);
            }
            return;
        }
        int i;
        int attrOff;
        if (hasHandle)
        {
            ulong h = U64(ha);
            attrOff = ha.Offset;
            i = -1;
            for (int k = 0; k < Work.Tables.Count; k++)
                if (Work.Tables[k].Family == family && Work.Tables[k].Handle == h) { i = k; break; }
        }
        else
        {
            attrOff = na.Offset;
            i = Work.IndexOfTable(family, ReadName(na));
        }
        if (i < 0)
        {
            if (destroy) return;
            throw Err(Errno.ENOENT, attrOff);
        }
        var table = Work.Tables[i];
        if (table.OwnedByOther(PortId)) throw Err(Errno.EPERM, attrOff);
        if (_req.Has(NlmFlags.NonRec) && NftEncoder.TableUse(table) > 0) throw Err(Errno.EBUSY, attrOff);
        FlushAndDeleteTable(table);
    }

    /// <summary>nft_flush_table then nft_deltable: rules, sets, objects, chains, then the table.</summary>
    void FlushAndDeleteTable(TableRecord t)
    {
        // nft_flush_table passes over bound chains: they go with their rule, unnotified.
        static bool Bound(ChainRecord c) => (c.Flags & (uint)NftChainFlags.Binding) != 0;
        foreach (var c in t.Chains.Where(c => !Bound(c)))
            foreach (var r in c.Rules)
            {
                var (cc, rr) = (c, r);
                NotifyRuleGone(t, cc, rr);
            }
        foreach (var s in t.Sets)
        {
            if (s.IsAnonymous) continue;
            var ss = s;
            Notify((b, h) => Enc.Set(b, h, t, ss), (byte)NftMsgType.DelSet, NlmFlags.None);
        }
        foreach (var o in t.Objects)
        {
            var oo = o;
            Notify((b, h) => Enc.Object(b, h, t, oo, 0), (byte)NftMsgType.DelObj, NlmFlags.None);
        }
        foreach (var c in t.Chains.Where(c => !Bound(c)))
        {
            var cc = c;
            Notify((b, h) => Enc.Chain(b, h, t, cc, 0), (byte)NftMsgType.DelChain, NlmFlags.None);
        }
        Notify((b, h) => Enc.Table(b, h, t), (byte)NftMsgType.DelTable, NlmFlags.None);
        Work = Work with { Tables = Work.Tables.Remove(t) };
        MarkChanged();
    }
}
