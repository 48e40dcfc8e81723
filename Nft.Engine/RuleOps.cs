using System.Collections.Immutable;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using Nft.Bytecode.Objects;
using Nft.Engine.Model;
using Nft.Bytecode;
using Nft.Netlink;

namespace Nft.Engine;

/// <summary>NEWRULE / DELRULE, as nf_tables_newrule and nf_tables_delrule.</summary>
internal sealed partial class Transaction
{
    /// <summary>Set after a commit-time validation failure: validate the table after every rule, as the kernel's replay does.</summary>
    public bool ValidateEachRule;

    /// <summary>The committed rules' notified positions, indexed once per chain while the notifications are written.</summary>
    readonly RuleNotifyPositions _notifyPositions = new();

    (int Ti, int Ci) RuleChain(in AttributeTable a, byte family, int ti)
    {
        // _work, not Work: queued appends (PendingAppends) change no chain's name or handle
        var t = _work.Tables[ti];
        if (a.TryGet(NftaRule.Chain, out var ca))
        {
            int ci = ChainByName(t, ReadName(ca));
            if (ci < 0) throw Err(Errno.ENOENT, ca.Offset);
            return (ti, ci);
        }
        if (a.TryGet(NftaRule.ChainId, out var cid))
        {
            if (_chainIds.TryGetValue(U32(cid), out var id) && id.Family == t.Family && id.Table == t.Name
                && t.IndexOfChain(id.Handle) is int ci and >= 0)
                return (ti, ci);
            throw Err(Errno.ENOENT, cid.Offset);
        }
        throw Err(Errno.EINVAL);
    }

    void NewRule(in NetlinkMessage m, byte family)
    {
        var a = m.AttributeTable(NftaRule.Max);
        int ti = TableIndex(a, NftaRule.Table, family);
        var (_, ci) = RuleChain(a, family, ti);
        // a plain append is queued (PendingAppends): this rule reads its table and chain only for names, handles, sets
        // and flags, which queued appends leave as they are
        bool queued = _req.Has(NlmFlags.Append) && _req.Has(NlmFlags.Create) && !_req.Has(NlmFlags.Replace) && !ValidateEachRule
            && !a.Has(NftaRule.Handle) && !a.Has(NftaRule.Position) && !a.Has(NftaRule.PositionId);
        var t = queued ? _work.Tables[ti] : Work.Tables[ti];
        var chain = t.Chains[ci];

        int oldIndex = -1;
        ulong handle;
        bool replace = false;
        if (a.TryGet(NftaRule.Handle, out var ha))
        {
            handle = U64(ha);
            oldIndex = chain.IndexOfRule(handle);
            if (oldIndex < 0) throw Err(Errno.ENOENT, ha.Offset);
            if (_req.Has(NlmFlags.Excl)) throw Err(Errno.EEXIST, ha.Offset);
            if (!_req.Has(NlmFlags.Replace)) throw Err(Errno.EOPNOTSUPP);
            replace = true;
        }
        else
        {
            if (!_req.Has(NlmFlags.Create) || _req.Has(NlmFlags.Replace)) throw Err(Errno.EINVAL);
            handle = t.Handles.Next();
            if (a.TryGet(NftaRule.Position, out var pa))
            {
                oldIndex = chain.IndexOfRule(U64(pa));
                if (oldIndex < 0) throw Err(Errno.ENOENT, pa.Offset);
            }
            else if (a.TryGet(NftaRule.PositionId, out var pia))
            {
                if (!_ruleIds.TryGetValue(U32(pia), out var rid) || rid.Family != t.Family || rid.Table != t.Name
                    || rid.Chain != chain.Handle || (oldIndex = chain.IndexOfRule(rid.Handle)) < 0)
                    throw Err(Errno.ENOENT, pia.Offset);
            }
        }

        var exprs = a.TryGet(NftaRule.Expressions, out var ea)
            ? ParseExpressions(ea, t, chain)
            : ImmutableArray<Expression>.Empty;
        byte[]? udata = null;
        if (a.TryGet(NftaRule.UserData, out var ua))
        {
            if (ua.Payload.Length > NftLimits.UserDataMaxLen) throw Err(Errno.ERANGE, ua.Offset, "Attribute failed policy validation");
            udata = ua.Payload.ToArray();
        }
        var rule = new RuleRecord(new Rule { Handle = handle, Expressions = exprs, UserData = udata }, CountersOf(exprs));

        if (queued)
        {
            QueueAppend(ti, ci, rule);
            Touches.Added(t, chain, rule);
            Added(a, t, chain, rule, null); // the last of its chain: no position to carry
            return;
        }
        var rules = chain.Rules;
        ChainRecord? appended = null;
        if (replace)
        {
            var old = rules[oldIndex];
            rules = rules.SetItem(oldIndex, rule);
            Touches.Replaced(t, chain, old, rule);
            NotifyRuleGone(t, chain, old);
            ReplacedRules.Add((t.Family, t.Name, handle));
        }
        else
        {
            if (_req.Has(NlmFlags.Append) && oldIndex < 0)
                appended = SourceView.Append(chain, rule);
            else if (_req.Has(NlmFlags.Append))
                rules = rules.Insert(oldIndex + 1, rule);
            else
                rules = oldIndex >= 0 ? rules.Insert(oldIndex, rule) : rules.Insert(0, rule);
            Touches.Added(t, chain, rule);
        }

        // an append is linked to the record before it: the backend's view of the chain extends that record's view
        var nc = appended ?? chain with { Rules = rules };
        var nt = t with { Chains = t.Chains.SetItem(ci, nc) };
        PutTable(ti, nt);
        int at = replace ? oldIndex : appended != null ? nc.Rules.Count - 1
            : _req.Has(NlmFlags.Append) ? oldIndex + 1 : Math.Max(oldIndex, 0);
        Added(a, t, chain, rule, at > 0 && at < nc.Rules.Count - 1 ? nc.Rules[at - 1].Handle : null);
        if (ValidateEachRule) ChainValidator.Validate(nt);
    }

    /// <summary>
    /// The bookkeeping of an added or replacing rule: its id, origin and notification; <paramref name="appliedPos"/>: the
    /// handle before it when it has neighbours on both sides as applied.
    /// </summary>
    void Added(in AttributeTable a, TableRecord t, ChainRecord chain, RuleRecord rule, ulong? appliedPos)
    {
        ulong handle = rule.Handle;
        if (a.TryGet(NftaRule.Id, out var ida)) _ruleIds[U32(ida)] = (t.Family, t.Name, chain.Handle, handle);
        Origins[(t.Family, t.Name, handle)] = _msgIndex;
        MarkChanged();
        var flags = (_req.Flags & (NlmFlags.Append | NlmFlags.Replace)) != 0 ? NlmFlags.Append : NlmFlags.None;
        flags |= CreateExcl;
        // nf_tables_rule_notify runs at commit: a rule with neighbours on both sides carries the
        // handle of the one before it.
        byte fam = t.Family;
        string tname = t.Name;
        ulong chainHandle = chain.Handle;
        // Without the table or chain at commit (deleted later in the batch) the rule is reported as it was applied.
        // The closure keeps what that needs, not this message's table and chain records: one per rule of a batch,
        // each with its own path through the rule list, kept alive until the commit.
        var (appliedTable, appliedChain) = (t.Table, chain.Chain);
        Notify((b, h) =>
        {
            var ft = Work.FindTable(fam, tname);
            int fci = ft?.IndexOfChain(chainHandle) ?? -1;
            if (ft == null || fci < 0)
            {
                Enc.Rule(b, h, new TableRecord(appliedTable, new HandleCounter(0), [], [], []),
                    new ChainRecord(appliedChain, []), rule, appliedPos);
                return;
            }
            var fc = ft.Chains[fci];
            _notifyPositions.TryGet(fc, rule.Handle, out var pos);
            Enc.Rule(b, h, ft, fc, rule, pos);
        }, (byte)NftMsgType.NewRule, flags);
    }

    ImmutableArray<Expression> ParseExpressions(NetlinkAttribute list, TableRecord t, ChainRecord chain)
    {
        // counted first: the builder's array becomes the rule's, not copied into another
        int n = 0;
        for (var c = list.Nested(); c.TryRead(out _);) n++;
        var result = ImmutableArray.CreateBuilder<Expression>(Math.Min(n, NftLimits.RuleMaxExprs + 1));
        var r = list.Nested();
        while (r.TryRead(out var elem))
        {
            if (elem.Type != 1 /* NFTA_LIST_ELEM */) throw Err(Errno.EINVAL);
            if (result.Count == NftLimits.RuleMaxExprs) throw Err(Errno.EINVAL);
            result.Add(ParseExpression(elem, t, chain));
        }
        return result.Count == result.Capacity ? result.MoveToImmutable() : result.ToImmutable();
    }

    /// <summary>This batch's expressions decoded once for every rule that sends the same bytes.</summary>
    readonly SharedExpressions _sharedExpressions = new();

    Expression ParseExpression(NetlinkAttribute elem, TableRecord t, ChainRecord chain)
    {
        Span<byte> keyBuffer = stackalloc byte[SharedExpressions.KeyBufferSize];
        var key = SharedExpressions.Key(elem.RawType, elem.Payload, keyBuffer);
        if (_sharedExpressions.TryGet(key, out var shared)) return shared;
        var e = ParseNewExpression(elem, t, chain);
        _sharedExpressions.Add(key, e);
        return e;
    }

    Expression ParseNewExpression(NetlinkAttribute elem, TableRecord t, ChainRecord chain)
    {
        // NFTA_EXPR_NAME, the last one as nla_parse keeps it (read in place: this runs for every expression of every rule)
        NetlinkAttribute nameAttr = default;
        bool named = false;
        for (var r = elem.Nested(); r.TryRead(out var a);)
            if (a.Type == 1)
            {
                nameAttr = a;
                named = true;
            }
        if (!named) throw Err(Errno.EINVAL, elem.Offset);
        string name = nameAttr.String(16);
        if (!RuleExpressions.Known.Contains(name)) throw Err(Errno.ENOENT, elem.Offset);
        // The typed decoders check each kind's attributes as the kernel's policies and init functions do.
        Expression e;
        try
        {
            e = ExpressionCodec.Decode(elem);
        }
        catch (NetlinkException ex)
        {
            throw Err(ex.Errno, elem.Offset, ex.ExtAck);
        }
        try
        {
            return KernelForm.Of(Bind(e, t, chain));
        }
        catch (NetlinkException ex) when (ex.Offset < 0)
        {
            // nf_tables_newrule blames the whole expression for what its init refuses.
            throw new NetlinkException(ex.Errno, ex.ExtAck, elem.Offset);
        }
    }

    /// <summary>Resolves what an expression refers to (sets, chains, objects) as its init function does.</summary>
    Expression Bind(Expression e, TableRecord t, ChainRecord ruleChain)
    {
        switch (e)
        {
            case ImmediateExpr { Data: VerdictData v } i:
                var (code, chain) = CheckVerdict(v.Verdict, t);
                // nf_tables_bind_chain: a bound chain cannot jump to another bound chain
                if (chain != null && IsBinding(ruleChain) && t.FindChain(chain) is { } target && IsBinding(target))
                    throw Err(Errno.EOPNOTSUPP);
                return i with { Data = new VerdictData(new Verdict(code, chain)) };
            case LookupExpr l:
            {
                var set = ResolveSet(t, l.Set, l.SetId);
                if (l.DReg != null && !set.IsMap) throw Err(Errno.EINVAL);
                return l with { Set = set.Name };
            }
            case DynsetExpr d:
            {
                var set = ResolveSet(t, d.SetName, d.SetId);
                if ((set.Flags & (uint)NftSetFlags.Constant) != 0) throw Err(Errno.EBUSY);
                if ((set.Flags & (uint)NftSetFlags.Object) != 0) throw Err(Errno.EOPNOTSUPP);
                // nft_dynset_init: data only into a map of values (a verdict map takes none); a map needs its data
                if (d.SRegData != null && (!set.IsMap || set.IsVerdictMap)) throw Err(Errno.EOPNOTSUPP);
                if (d.SRegData == null && set.IsMap) throw Err(Errno.EINVAL);
                if (DynsetStatements.Refusal(d, set) is { } refused) throw Err(refused);
                // nft_dynset_init decides now whether the rule's elements get a timeout: its own, or the set's default
                // as it is before this batch commits (an `add set` updating it takes effect at commit)
                bool neverExpire = (set.Flags & (uint)NftSetFlags.Timeout) != 0 && (d.Timeout ?? 0) == 0 && (set.Set.Timeout ?? 0) == 0;
                return d with { SetName = set.Name, ElementsNeverExpire = neverExpire };
            }
            case ObjRefExpr o when o.ImmType != null && o.ImmName != null:
                if (t.IndexOfObject(o.ImmName, o.ImmType.Value) < 0) throw Err(Errno.ENOENT);
                return o;
            case ObjRefExpr o when o.SetSReg != null && (o.SetName != null || o.SetId != null):
            {
                var set = ResolveSet(t, o.SetName, o.SetId);
                if ((set.Flags & (uint)NftSetFlags.Object) == 0) throw Err(Errno.EINVAL);
                return o with { SetName = set.Name };
            }
            case ObjRefExpr:
                throw Err(Errno.EINVAL);
            default:
                return e;
        }
    }

    static bool IsBinding(ChainRecord c) => (c.Flags & (uint)NftChainFlags.Binding) != 0;

    /// <summary>Fresh runtime state for the counter and quota expressions of a rule, from the values nft sent.</summary>
    static ImmutableArray<CounterCell?> CountersOf(IReadOnlyList<Expression> exprs)
    {
        var cells = ImmutableArray.CreateBuilder<CounterCell?>(exprs.Count);
        foreach (var e in exprs)
            cells.Add(e switch
            {
                CounterExpr c => new CounterCell(c.Packets ?? 0, c.Bytes ?? 0),
                QuotaExpr q => new CounterCell(0, q.Consumed ?? 0),
                _ => null,
            });
        return cells.MoveToImmutable();
    }

    /// <summary>nft_verdict_init: the code must be known; jump/goto need a regular chain of this table.</summary>
    (int Code, string? Chain) CheckVerdict(Verdict v, TableRecord t)
    {
        int code = v.Code;
        switch (code)
        {
            case Verdict.Continue or Verdict.Break or Verdict.Return:
                return (code, null);
            case Verdict.Jump or Verdict.Goto:
            {
                ChainRecord? target = null;
                if (v.Chain is string cn) target = ChainByName(t, cn) is int tx and >= 0 ? t.Chains[tx] : null;
                else if (v.ChainId is uint id && _chainIds.TryGetValue(id, out var ci)
                         && ci.Family == t.Family && ci.Table == t.Name && t.IndexOfChain(ci.Handle) is int ix and >= 0)
                    target = t.Chains[ix];
                else if (v.ChainId == null) throw Err(Errno.EINVAL);
                if (target == null) throw Err(Errno.ENOENT);
                if (target.IsBase) throw Err(Errno.EOPNOTSUPP);
                return (code, target.Name);
            }
            default:
                if ((code & 0xff) is Verdict.Accept or Verdict.Drop or Verdict.Queue) return (code, null);
                throw Err(Errno.EINVAL);
        }
    }

    /// <summary>nft_set_lookup_global: by name in the table, else by the batch's NFTA_SET_ID.</summary>
    SetRecord ResolveSet(TableRecord t, string? name, uint? id)
    {
        if (name != null && t.FindSet(name) is { } s) return s;
        if (id is uint i && _setIds.TryGetValue(i, out var sid) && sid.Family == t.Family && sid.Table == t.Name
            && t.IndexOfSet(sid.Handle) is int ix and >= 0)
            return t.Sets[ix];
        throw Err(Errno.ENOENT);
    }

    void DelRule(in NetlinkMessage m, byte family, bool destroy)
    {
        var a = m.AttributeTable(NftaRule.Max);
        int ti = TableIndex(a, NftaRule.Table, family);
        var t = Work.Tables[ti];
        if (a.TryGet(NftaRule.Chain, out var ca))
        {
            int ci = ChainByName(t, ReadName(ca));
            if (ci < 0) throw Err(Errno.ENOENT, ca.Offset);
            var c = t.Chains[ci];
            if ((c.Flags & (uint)NftChainFlags.Binding) != 0) throw Err(Errno.EOPNOTSUPP);
            if (a.TryGet(NftaRule.Handle, out var ha))
            {
                int ri = c.IndexOfRule(U64(ha));
                if (ri < 0)
                {
                    if (destroy) return;
                    throw Err(Errno.ENOENT, ha.Offset);
                }
                RemoveRules(ti, ci, [ri]);
            }
            else if (a.TryGet(NftaRule.Id, out var ida))
            {
                int ri = _ruleIds.TryGetValue(U32(ida), out var rid) && rid.Family == t.Family && rid.Table == t.Name
                    && rid.Chain == c.Handle ? c.IndexOfRule(rid.Handle) : -1;
                if (ri < 0) throw Err(Errno.ENOENT, ida.Offset);
                RemoveRules(ti, ci, [ri]);
            }
            else
            {
                RemoveRules(ti, ci, Enumerable.Range(0, c.Rules.Count).ToArray());
            }
            return;
        }
        for (int ci = 0; ci < t.Chains.Count; ci++)
            if ((Work.Tables[ti].Chains[ci].Flags & (uint)NftChainFlags.Binding) == 0)
                RemoveRules(ti, ci, Enumerable.Range(0, Work.Tables[ti].Chains[ci].Rules.Count).ToArray());
    }

    void RemoveRules(int ti, int ci, int[] indexes)
    {
        if (indexes.Length == 0) return;
        var t = Work.Tables[ti];
        var c = t.Chains[ci];
        var removed = new HashSet<ulong>();
        foreach (int i in indexes)
        {
            var r = c.Rules[i];
            removed.Add(r.Handle);
            Touches.Removed(t, c, r);
            NotifyRuleGone(t, c, r);
        }
        var boundSets = c.Rules.Where(r => removed.Contains(r.Handle))
            .SelectMany(r => r.Expressions).Select(ExprRefs.SetName).OfType<string>().ToHashSet();
        var nc = c with { Rules = c.Rules.RemoveAll(r => removed.Contains(r.Handle)) };
        var nt = t with { Chains = t.Chains.SetItem(ci, nc) };
        // Anonymous sets live and die with the rule that binds them.
        foreach (var sn in boundSets)
            if (nt.FindSet(sn) is { IsAnonymous: true } s && SetUse(nt, sn) == 0)
                nt = nt with { Sets = nt.Sets.Remove(s) };
        // So do bound chains (jump { ... }), with the chains they bind in turn; the kernel destroys them
        // at commit without notifying them or their rules.
        var bound = new Queue<string>(c.Rules.Where(r => removed.Contains(r.Handle))
            .SelectMany(r => r.Expressions).Select(ExprRefs.ChainTarget).OfType<string>());
        while (bound.TryDequeue(out var name))
        {
            int bi = nt.IndexOfChain(name);
            if (bi < 0 || (nt.Chains[bi].Flags & (uint)NftChainFlags.Binding) == 0) continue;
            foreach (var r in nt.Chains[bi].Rules)
                foreach (var e in r.Expressions)
                    if (ExprRefs.ChainTarget(e) is string inner) bound.Enqueue(inner);
            nt = nt with { Chains = nt.Chains.RemoveAt(bi) };
        }
        PutTable(ti, nt);
        MarkChanged();
    }
}
