using System.Collections.Immutable;
using Nft.Bytecode.Data;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Bytecode.Objects;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWCHAIN / DELCHAIN, as nf_tables_newchain (add, update, rename) and nf_tables_delchain.</summary>
internal sealed partial class Transaction
{
    void NewChain(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaChain.Max);
        int ti = TableIndex(a, NftaChain.Table, family);
        var t = Work.Tables[ti];
        int ci = -1;
        int attrOff = a.TryGet(NftaChain.Name, out var na) ? na.Offset : -1;
        if (a.TryGet(NftaChain.Handle, out var ha))
        {
            ci = t.IndexOfChain(U64(ha));
            if (ci < 0) throw Err(Errno.ENOENT, ha.Offset);
            attrOff = ha.Offset;
        }
        else if (a.Has(NftaChain.Name))
        {
            ci = ChainByName(t, ReadName(na));
        }
        else if (!a.Has(NftaChain.Id))
        {
            throw Err(Errno.EINVAL);
        }

        uint? policy = null;
        if (a.TryGet(NftaChain.Policy, out var pa))
        {
            if (ci >= 0 && !t.Chains[ci].IsBase) throw Err(Errno.EOPNOTSUPP, pa.Offset);
            if (ci < 0 && !a.Has(NftaChain.Hook)) throw Err(Errno.EOPNOTSUPP, pa.Offset);
            policy = U32(pa);
            if (policy is not (0 or 1)) throw Err(Errno.EINVAL);
        }
        uint flags = a.TryGet(NftaChain.Flags, out var fa) ? U32(fa) : ci >= 0 ? t.Chains[ci].Flags : 0;
        if ((flags & ~(uint)NftChainFlags.Mask) != 0) throw Err(Errno.EOPNOTSUPP);

        if (ci >= 0)
        {
            var c = t.Chains[ci];
            if ((c.Flags & (uint)NftChainFlags.Binding) != 0) throw Err(Errno.EINVAL);
            if (_req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST, attrOff);
            if (_req.Has(NlmFlags.Replace)) throw Err(Errno.EOPNOTSUPP);
            UpdateChain(ti, ci, a, policy, attrOff);
            return;
        }
        AddChain(ti, a, family, policy ?? 1, flags);
    }

    /// <summary>NFTA_CHAIN_HOOK and NFTA_CHAIN_TYPE as the kernel keeps them: devices as a list, the type defaulted to filter.</summary>
    (ChainHook Hook, string Type) ParseHook(in AttributeTable a, byte family, bool refuseOutOfScope = true)
    {
        var hookAttr = a[NftaChain.Hook];
        var h = hookAttr.Table(NftaHook.Max);
        if (!h.TryGet(NftaHook.HookNum, out var hn)) throw Err(Errno.EINVAL, hookAttr.Offset);
        if (!h.TryGet(NftaHook.Priority, out var hp)) throw Err(Errno.EINVAL, hookAttr.Offset);
        uint num = U32(hn);
        int prio = (int)U32(hp);
        string type = "filter";
        if (a.TryGet(NftaChain.Type, out var ta))
        {
            type = ReadName(ta, 32);
            if (!ChainTypeExists(type, family)) throw Err(Errno.ENOENT, ta.Offset);
            if (type != "filter" && refuseOutOfScope && _ns.Options.RefuseOutOfScope)
                throw Err(Errno.EOPNOTSUPP, ta.Offset, $"bpfilter-nft: chain type {type} is not supported");
        }
        if (num >= NftLimits.MaxHooks || (HookMask(type, family) & (1u << (int)num)) == 0) throw Err(Errno.EOPNOTSUPP);
        var devices = ImmutableArray.CreateBuilder<string>();
        if (NftEncoder.IsNetdevHook(family, num))
        {
            if (h.TryGet(NftaHook.Dev, out var dev))
            {
                devices.Add(ParseDevice(dev));
            }
            else if (h.TryGet(NftaHook.Devs, out var devs))
            {
                var r = devs.Nested();
                while (r.TryRead(out var d))
                {
                    if (d.Type != 1) throw Err(Errno.EINVAL, d.Offset);
                    string name = ParseDevice(d);
                    if (devices.Contains(name)) throw Err(Errno.EEXIST, d.Offset);
                    devices.Add(name);
                }
            }
            if (devices.Count == 0) throw Err(Errno.EINVAL, hookAttr.Offset);
        }
        else if (h.TryGet(NftaHook.Dev, out var dev))
        {
            throw Err(Errno.EOPNOTSUPP, dev.Offset);
        }
        else if (h.TryGet(NftaHook.Devs, out var devs))
        {
            throw Err(Errno.EOPNOTSUPP, devs.Offset);
        }
        return (new ChainHook(num, prio, null, devices.Count > 0 ? devices.ToImmutable() : null), type);
    }

    string ParseDevice(NetlinkAttribute d)
    {
        string name = ReadName(d, 15);
        if (name.Length == 0) throw Err(Errno.EINVAL, d.Offset);
        if (_ns.Options.DeviceExists is { } exists && !exists(name))
            throw Err(Errno.ENOENT, d.Offset, $"device {name} does not exist");
        return name;
    }

    static bool ChainTypeExists(string type, byte family) => type switch
    {
        "filter" => true,
        "nat" or "route" => family is NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Inet,
        _ => false,
    };

    static uint HookMask(string type, byte family) => (type, family) switch
    {
        ("filter", NfProto.Inet) => 0x3f,
        ("filter", NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Bridge) => 0x1f,
        ("filter", NfProto.Arp) => 0x7,
        ("filter", NfProto.Netdev) => 0x3,
        ("nat", _) => 0x1b,
        ("route", _) => 0x8,
        _ => 0,
    };

    void AddChain(int ti, in AttributeTable a, byte family, uint policy, uint flags)
    {
        var t = Work.Tables[ti];
        ChainHook? hook = null;
        string? type = null;
        if (a.Has(NftaChain.Hook))
        {
            if ((flags & (uint)NftChainFlags.Binding) != 0) throw Err(Errno.EOPNOTSUPP);
            (hook, type) = ParseHook(a, family);
            flags |= (uint)NftChainFlags.Base;
            if ((flags & (uint)NftChainFlags.HwOffload) != 0) throw Err(Errno.EOPNOTSUPP, -1, "bpfilter-nft: hardware offload is not supported");
        }
        else
        {
            if ((flags & (uint)NftChainFlags.Base) != 0) throw Err(Errno.EINVAL);
            if ((flags & (uint)NftChainFlags.HwOffload) != 0) throw Err(Errno.EOPNOTSUPP);
        }
        ulong handle = t.Handles.Next();
        string name;
        if (a.TryGet(NftaChain.Name, out var na)) name = ReadName(na);
        else if ((flags & (uint)NftChainFlags.Binding) != 0) name = $"__chain{handle}";
        else throw Err(Errno.EINVAL, -1);
        byte[]? udata = a.TryGet(NftaChain.UserData, out var ua) ? ua.Payload.ToArray() : null;
        var stored = new Chain
        {
            Name = name,
            Handle = handle,
            Flags = flags,
            Hook = hook,
            Policy = hook != null ? policy : null,
            Type = type,
            UserData = udata,
        };
        var chain = new ChainRecord(stored, ImmutableList<RuleRecord>.Empty);
        t = t with { Chains = t.Chains.Add(chain) };
        PutTable(ti, t);
        if (a.TryGet(NftaChain.Id, out var ida)) _chainIds[U32(ida)] = (t.Family, t.Name, handle);
        Origins[(t.Family, t.Name, handle)] = _msgIndex;
        MarkChanged();
        var tt = t;
        Notify((b, h) => Enc.Chain(b, h, tt, chain, 0), (byte)NftMsgType.NewChain, CreateExcl);
    }

    void UpdateChain(int ti, int ci, in AttributeTable a, uint? policy, int attrOff)
    {
        var t = Work.Tables[ti];
        var c = t.Chains[ci];
        var stored = c.Chain;
        if (a.Has(NftaChain.Hook))
        {
            if (stored.Hook is not { } old) throw Err(Errno.EEXIST, attrOff);
            var (nh, type) = ParseHook(a, t.Family, refuseOutOfScope: false);
            if (type != stored.Type) throw Err(Errno.EOPNOTSUPP);
            if (nh.HookNum != old.HookNum || nh.Priority != old.Priority) throw Err(Errno.EOPNOTSUPP);
            var devs = c.Devices.ToList();
            foreach (var d in nh.AllDevices) if (!devs.Contains(d)) devs.Add(d);
            stored = stored with { Hook = old with { Devices = devs.Count > 0 ? devs : null } };
        }
        if (policy is uint p && stored.Hook != null) stored = stored with { Policy = p };
        string name = c.Name;
        if (a.Has(NftaChain.Handle) && a.TryGet(NftaChain.Name, out var na))
        {
            string newName = ReadName(na);
            if (newName != c.Name)
            {
                // taken, by a chain as the batch sees it or by another rename of this batch
                if (ChainByName(t, newName) >= 0 || t.IndexOfChain(newName) >= 0) throw Err(Errno.EEXIST, na.Offset);
                _renamed.TryAdd((t.Family, t.Name, c.Handle), c.Name);
                name = newName;
            }
        }
        var nc = c with { Chain = stored with { Name = name } };
        var tn = t with { Chains = t.Chains.SetItem(ci, nc) };
        if (name != c.Name) tn = RenameReferences(tn, c.Name, name);
        PutTable(ti, tn);
        MarkChanged();
        Notify((b, h) => Enc.Chain(b, h, tn, nc, 0), (byte)NftMsgType.NewChain, CreateExcl);
    }

    /// <summary>
    /// nft_chain_lookup within a batch: a rename takes effect at commit (nft_chain_commit_update), so
    /// until then a renamed chain answers to its old name and not to its new one. The records carry
    /// the new name already, for the notifications and the committed ruleset.
    /// </summary>
    int ChainByName(TableRecord t, string name)
    {
        foreach (var ((family, table, handle), old) in _renamed)
            if (old == name && family == t.Family && table == t.Name) return t.IndexOfChain(handle);
        int i = t.IndexOfChain(name);
        return i >= 0 && _renamed.ContainsKey((t.Family, t.Name, t.Chains[i].Handle)) ? -1 : i;
    }

    /// <summary>The kernel points at chains; we name them, so a rename rewrites every jump/goto to it.</summary>
    TableRecord RenameReferences(TableRecord t, string from, string to)
    {
        Touches.Incomplete();
        var chains = t.Chains;
        for (int ci = 0; ci < chains.Count; ci++)
        {
            var c = chains[ci];
            var rules = c.Rules;
            for (int ri = 0; ri < rules.Count; ri++)
            {
                var r = rules[ri];
                if (!r.Expressions.Any(e => ExprRefs.ChainTarget(e) == from)) continue;
                var exprs = r.Expressions.Select(e => ExprRefs.ChainTarget(e) == from ? RuleExpressions.Retarget(e, to) : e).ToList();
                rules = rules.SetItem(ri, r with { Rule = r.Rule with { Expressions = exprs } });
            }
            chains = chains.SetItem(ci, c with { Rules = rules });
        }
        var sets = t.Sets;
        for (int si = 0; si < sets.Count; si++)
        {
            var s = sets[si];
            if (!s.IsVerdictMap) continue;
            var els = s.Elements;
            foreach (var e in s.Elements)
                if (e.Verdict is { } v && v.Chain == from)
                    els = els.SetItem(e with { Element = e.Element with { Data = new VerdictData(v with { Chain = to }) } });
            sets = sets.SetItem(si, s with { Elements = els });
        }
        return t with { Chains = chains, Sets = sets };
    }

    void DelChain(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaChain.Max);
        int ti = TableIndex(a, NftaChain.Table, family);
        var t = Work.Tables[ti];
        int ci;
        int attrOff;
        if (a.TryGet(NftaChain.Handle, out var ha))
        {
            attrOff = ha.Offset;
            ci = t.IndexOfChain(U64(ha));
        }
        else
        {
            if (!a.TryGet(NftaChain.Name, out var na)) throw Err(Errno.EINVAL);
            attrOff = na.Offset;
            ci = ChainByName(t, ReadName(na));
        }
        if (ci < 0)
        {
            if (destroy) return;
            throw Err(Errno.ENOENT, attrOff);
        }
        var c = t.Chains[ci];
        if ((c.Flags & (uint)NftChainFlags.Binding) != 0) throw Err(Errno.EOPNOTSUPP);
        if (a.Has(NftaChain.Hook) && c.Chain.Hook is { HookNum: uint hn } && NftEncoder.IsNetdevHook(t.Family, hn))
            throw Err(Errno.EOPNOTSUPP, a[NftaChain.Hook].Offset, "bpfilter-nft: removing single devices from a chain is not supported");
        int refs = ChainRefs(t).GetValueOrDefault(c.Name);
        if (_req.Has(NlmFlags.NonRec) && refs + c.Rules.Count > 0) throw Err(Errno.EBUSY);
        // Rules go first (their own jumps are released), then references that remain block deletion.
        foreach (var r in c.Rules)
        {
            var rr = r;
            NotifyRuleGone(t, c, rr);
        }
        Touches.Incomplete(); // the chain goes with its rules
        var emptied = c with { Rules = ImmutableList<RuleRecord>.Empty };
        var t2 = t with { Chains = t.Chains.SetItem(ci, emptied) };
        // Self-references count for the kernel too: use was taken before the rules were released.
        if (refs > 0) throw Err(Errno.EBUSY, attrOff);
        t2 = t2 with { Chains = t2.Chains.RemoveAt(ci) };
        PutTable(ti, t2);
        MarkChanged();
        Notify((b, h) => Enc.Chain(b, h, t2, c, 0), (byte)NftMsgType.DelChain, NlmFlags.None);
    }
}
