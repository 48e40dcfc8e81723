using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using Nft.Bytecode.Data;
using Nft.Bytecode.Expressions;
using IrVerdict = Bpfilter.Backend.Ir.Verdict;
using NftRule = Nft.Bytecode.Objects.Rule;
using NftVerdict = Nft.Bytecode.Data.Verdict;

namespace Nft.Lifter;

/// <summary>
/// Lifts one rule, in two phases as nftables' netlink_delinearize.c: follow the registers through the
/// expressions (producers write, consumers fold what they read into matchers), then ordered passes
/// with the header context (drop implied dependencies, merge ranges, place the counter). Anything
/// unexplained is refused with the index of the expression to blame.
/// </summary>
internal sealed partial class RuleLifter
{
    readonly TableContext _table;
    readonly RuleContext _rule;
    readonly RegisterFile _regs;
    readonly HeaderContext _ctx;
    readonly List<LiftedMatch> _matches = [];
    readonly IReadOnlyList<Expression> _exprs;
    IrVerdict? _verdict;
    MatchKey? _vmapKey;
    int _counterIndex = -1;
    int _matchesBeforeCounter;
    /// <summary>The expression indexes of the rule's counters: each counts in a slot of its own (a rule has a few: a list, not a hash set per rule).</summary>
    readonly List<int> _counters = [];
    /// <summary>Log statements with their expression index (statements keep nf_tables' order).</summary>
    readonly List<(int Index, LogStatement Statement)> _logs = [];
    int _matchesBeforeLog;
    /// <summary>Quota statements (anonymous or named) with their expression index.</summary>
    readonly List<(int Index, Statement Statement)> _stateful = [];
    int _matchesBeforeStateful;

    RuleLifter(TableContext table, string chain, bool linkLayer, NftRule rule)
    {
        _table = table;
        _rule = new RuleContext(table, chain, rule.Handle ?? 0);
        _regs = new RegisterFile(_rule);
        _exprs = rule.Expressions ?? [];
        _ctx = new HeaderContext
        {
            LinkLayer = linkLayer,
            AnyEtherType = table.Family == NfProto.Netdev,
            L3 = table.Family switch { NfProto.Ipv4 => HeaderProtocol.Ip, NfProto.Ipv6 => HeaderProtocol.Ip6, _ => null },
        };
    }

    /// <summary>Lifts <paramref name="rule"/> of <paramref name="chain"/>; linkLayer: its packets start at the Ethernet header.</summary>
    public static Rule Lift(TableContext table, string chain, bool linkLayer, NftRule rule)
    {
        if (rule.Handle is null) throw new LiftException(table.Family, table.Name, chain, null, -1, "rule without a handle");
        var l = new RuleLifter(table, chain, linkLayer, rule);
        try
        {
            return l.Run();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException)
        {
            // an IR invariant the folding did not foresee: refuse rather than guess
            throw l._rule.Refuse(-1, $"cannot be represented: {e.Message}");
        }
    }

    Rule Run()
    {
        int deadCounter = -1;
        for (int i = 0; i < _exprs.Count; i++)
        {
            if (_verdict is VerdictMapVerdict && _exprs[i] is CounterExpr)
            {
                // nf_tables ends the rule at a vmap lookup: a miss breaks to the next rule, a hit carries the
                // element's verdict, and only a `continue` element (refused in maps) would run what follows;
                // nft's `ip saddr vmap {...} counter` therefore never counts, as the kernel shows.
                if (deadCounter < 0) deadCounter = i;
                continue;
            }
            if (_verdict != null) throw _rule.Refuse(i, $"expression '{_exprs[i].Name}' after the verdict is not supported");
            Step(_exprs[i], i);
        }
        if (deadCounter >= 0 && _counterIndex >= 0)
            throw _rule.Refuse(deadCounter, "a counter after a verdict map in a rule that also counts before it is not supported: " +
                "bpfilter-nft would list it from the rule's first counter");
        if (_regs.FirstUnconsumed() is { } v)
            throw _rule.Refuse(v.Producer, $"expression '{_exprs[v.Producer].Name}' loads a value that nothing reads");

        // loops over presized lists, not LINQ: every rule of a 100,000-rule load passes here
        var (kept, lastKept) = DropImpliedDependencies();
        CheckCounterPlacement(lastKept);
        var matchers = MergeRanges(kept);
        return new Rule(ValueList.Own(matchers), Statements(), _verdict ?? IrVerdict.Continue)
        {
            Origin = $"{FamilyNames.Of(_table.Family)} {_table.Name} {_rule.Chain} handle {_rule.Handle}",
        };
    }

    /// <summary>The rule's statements (counters, logs, the rest) in their expressions' order.</summary>
    ValueList<Statement> Statements()
    {
        int n = _counters.Count + _logs.Count + _stateful.Count;
        if (n == 0) return ValueList<Statement>.Empty;
        var statements = new List<(int Index, Statement Statement)>(n);
        if (_counters.Count > 0)
            foreach (var (index, key) in CounterKey.OfRule(_table.Family, _table.Name, _rule.Chain, _rule.Handle, _exprs))
                if (_counters.Contains(index)) statements.Add((index, new CounterStatement(_table.Counters.GetOrAdd(key))));
        foreach (var (index, log) in _logs) statements.Add((index, log));
        statements.AddRange(_stateful);
        // a stable insertion sort by expression index (a rule has a few statements)
        for (int k = 1; k < statements.Count; k++)
        {
            var s = statements[k];
            int j = k - 1;
            for (; j >= 0 && statements[j].Index > s.Index; j--) statements[j + 1] = statements[j];
            statements[j + 1] = s;
        }
        var items = new Statement[statements.Count];
        for (int k = 0; k < items.Length; k++) items[k] = statements[k].Statement;
        return ValueList.Own(items);
    }

    void Step(Expression e, int i)
    {
        switch (e)
        {
            case PayloadExpr p: Payload(p, i); break;
            case MetaExpr m: Meta(m, i); break;
            case CtExpr ct: Ct(ct, i); break;
            case ImmediateExpr im: Immediate(im, i); break;
            case BitwiseExpr b: Bitwise(b, i); break;
            case ByteorderExpr o: Byteorder(o, i); break;
            case CmpExpr c: Cmp(c, i); break;
            case RangeExpr r: Range(r, i); break;
            case LookupExpr l: Lookup(l, i); break;
            case CounterExpr: Counter(i); break;
            case LogExpr l: Log(l, i); break;
            case DynsetExpr d: Dynset(d, i); break;
            case QuotaExpr q: Quota(q, i); break;
            case LimitExpr l: Limit(l, i); break;
            case ObjRefExpr { IsMap: false } o: ObjRef(o, i); break;
            case ObjRefExpr { IsMap: true } om: ObjRefMap(om, i); break;
            case ExthdrExpr x:
                throw _rule.Refuse(i, ExthdrRefusal.Reason(x));
            case RejectExpr r: Reject(r, i); break;
            default:
                throw _rule.Refuse(i, $"expression '{e.Name}' is not supported by bpfilter-nft");
        }
    }

    // ---- producers

    void Payload(PayloadExpr p, int i)
    {
        if (p.IsSet || p.DReg is not { } dreg)
            throw _rule.Refuse(i, "expression 'payload' writing packet data (payload set) is not supported by bpfilter-nft");
        if (p.Base > PayloadExpr.BaseTransport)
            throw _rule.Refuse(i, $"payload base {(p.Base == PayloadExpr.BaseInner ? "inner" : p.Base.ToString())} is not supported by bpfilter-nft");
        if (p.Len == 0) throw _rule.Refuse(i, "zero-length payload load");
        _regs.Write(dreg, new RegValue(new PayloadSource(p.Base, p.Offset), (int)p.Len, i), i);
    }

    void Meta(MetaExpr m, int i)
    {
        if (m.IsSet && m.Key == MetaExpr.KeyMark)
        {
            MarkSet(m, i);
            return;
        }
        if (m.IsSet || m.DReg is not { } dreg)
            throw _rule.Refuse(i, $"expression 'meta' setting meta {MetaNames.Of(m.Key)} is not supported by bpfilter-nft");
        var ir = MetaNames.IrKey(m.Key);
        if (m.Key == MetaExpr.KeyIifType && !_ctx.LinkLayer)
            throw _rule.Refuse(i, LinkLayerOnly);
        if (ir is null && m.Key != MetaExpr.KeyIifType)
            throw _rule.Refuse(i, $"expression 'meta {MetaNames.Of(m.Key)}' is not supported by bpfilter-nft");
        _regs.Write(dreg, new RegValue(new MetaSource(m.Key, ir), MetaNames.LengthOf(m.Key), i), i);
    }

    void Immediate(ImmediateExpr im, int i)
    {
        if (im.Verdict is { } v)
        {
            _verdict = Verdict(v, i);
            return;
        }
        var data = ((ValueData)im.Data).Value;
        _regs.Write(im.DReg, new RegValue(new ConstSource(data), data.Length, i), i);
    }

    void Bitwise(BitwiseExpr b, int i)
    {
        if (b.Operation != BitwiseExpr.OpMaskXor)
            throw _rule.Refuse(i, $"bitwise {(b.Operation is BitwiseExpr.OpLshift or BitwiseExpr.OpRshift ? "shift" : "register operation")} is not supported by bpfilter-nft");
        var v = _regs.ReadOne(b.SReg, i);
        if (v.Source is ConstSource) throw _rule.Refuse(i, "bitwise on immediate data is not supported by bpfilter-nft");
        if (b.Len != v.Len) throw _rule.Refuse(i, $"bitwise over {b.Len} bytes of a {v.Len}-byte value is not supported");
        var mask = ((ValueData)b.Mask!).Value;
        var xor = ((ValueData)b.Xor!).Value;
        var combined = mask.ToArray();
        if (v.Mask != null) for (int k = 0; k < combined.Length; k++) combined[k] &= v.Mask[k];
        v.Consumed = true;
        // mask-and-xor with a non-zero xor rewrites bits (nft's `ip dscp set`): only a statement that writes
        // the packet consumes it, and that statement is refused with its own name; a match on it is refused here
        var unsupported = xor.AsSpan().IndexOfAnyExcept((byte)0) >= 0 ? (i, "bitwise with a non-zero xor is not supported by bpfilter-nft") : v.Unsupported;
        _regs.Write(b.DReg, new RegValue(v.Source, v.Len, v.Producer) { Mask = combined, Hton = v.Hton, Unsupported = unsupported }, i);
    }

    void Byteorder(ByteorderExpr b, int i)
    {
        var v = _regs.ReadOne(b.SReg, i);
        // nft converts host-order meta values to network order before ordered comparisons
        if (b.Op != ByteorderExpr.OpHton || !v.HostOrder || v.Mask != null || b.Len != 4 || b.Size != 4 || v.Len != 4)
            throw _rule.Refuse(i, "expression 'byteorder' is supported only as hton of a 32-bit meta value");
        v.Consumed = true;
        _regs.Write(b.DReg, new RegValue(v.Source, v.Len, v.Producer) { Hton = true }, i);
    }

    /// <summary>
    /// `meta mark set 0x10`: nft_meta_set_eval writes skb->mark, which only a tc program can do; the chain
    /// lift refuses it at other hooks (see <see cref="TableContext.FirstMarkSet"/>). Only an immediate
    /// value: a mark read from a data map or computed from the packet is not lifted.
    /// </summary>
    void MarkSet(MetaExpr m, int i)
    {
        var v = _regs.ReadOne(m.SReg!.Value, i);
        if (v.Source is not ConstSource c || v.Len != 4 || c.Data.Length != 4)
            throw _rule.Refuse(i, "expression 'meta' setting meta mark from a value other than a constant is not supported by bpfilter-nft");
        v.Consumed = true;
        _table.NoteMarkSet(_rule, i);
        // the register holds the mark in host order, as nft_meta_set_eval reads it (a u32)
        var mark = BitConverter.ToUInt32(c.Data);
        AddStateful(i, new MetaSetStatement(MetaSetKey.Mark, new StatementValue.Immediate(Value.FromUInt(mark, 32))));
    }

    // ---- consumers

    void Cmp(CmpExpr c, int i)
    {
        var data = c.Value;
        var parts = _regs.Read(c.SReg, data.Length, i);
        bool eq = c.Op is CmpExpr.Eq or CmpExpr.Neq;
        if (parts.Count > 1)
        {
            if (!eq) throw _rule.Refuse(i, "ordered comparison of a concatenation is not supported by bpfilter-nft");
            var (key, ops) = Concat(parts, Use.SetKey, i);
            var bytes = new List<byte>();
            int at = 0;
            for (int k = 0; k < ops.Count; k++)
            {
                var val = ops[k].Convert(data.AsSpan(at)) ?? throw Never(i);
                bytes.AddRange(val.Bytes);
                at += parts[k].Value.PaddedLen;
            }
            var value = new Value(bytes.ToArray().AsSpan());
            Add(new Matcher(key, new Compare(c.Op == CmpExpr.Eq ? CompareOp.Eq : CompareOp.Ne, value)), i);
            return;
        }
        var (v, _) = parts[0];
        if (data.Length > v.Len && data.AsSpan(v.Len).IndexOfAnyExcept((byte)0) >= 0) throw Never(i);
        if (v.Source is MetaSource { IrKey: null } ms)
        {
            IifTypeDependency(v, ms, c, data, i);
            return;
        }
        var op = Resolver.Resolve(_rule, _ctx, v, data.Length, eq ? Use.Equality : Use.Ordered, i);
        var x = op.Convert(data) ?? throw Never(i);
        if (op.Mask is { } mask)
        {
            Add(Matcher.Mask(op.Field, mask, x, negated: c.Op == CmpExpr.Neq), i);
            return;
        }
        var cop = c.Op switch
        {
            CmpExpr.Eq => CompareOp.Eq, CmpExpr.Neq => CompareOp.Ne, CmpExpr.Lt => CompareOp.Lt,
            CmpExpr.Lte => CompareOp.Le, CmpExpr.Gt => CompareOp.Gt, _ => CompareOp.Ge,
        };
        Add(new Matcher(op.Field, new Compare(cop, x)), i);
    }

    void IifTypeDependency(RegValue v, MetaSource ms, CmpExpr c, byte[] data, int i)
    {
        // nft checks `meta iiftype ether` before link-layer matches in netdev tables; the IR's ether and
        // vlan fields imply an Ethernet header, so it is kept only as a dependency they must imply.
        ushort type = data.Length >= 2 ? (ushort)(BitConverter.IsLittleEndian ? data[0] | data[1] << 8 : data[0] << 8 | data[1]) : (ushort)0xffff;
        if (ms.Key != MetaExpr.KeyIifType || c.Op != CmpExpr.Eq || type != 1 || data.Length != 2)
            throw _rule.Refuse(i, $"meta {MetaNames.Of(ms.Key)} is only supported as nft's `meta iiftype ether` dependency");
        _matches.Add(new LiftedMatch(null, i, new Dependency("meta iiftype ether", [HeaderProtocol.Ether, HeaderProtocol.Vlan], Expressible: false)));
    }

    void Range(RangeExpr r, int i)
    {
        var from = ((ValueData)r.From).Value;
        var to = ((ValueData)r.To).Value;
        var parts = _regs.Read(r.SReg, from.Length, i);
        if (parts.Count > 1) throw _rule.Refuse(i, "range over a concatenation is not supported by bpfilter-nft");
        var v = parts[0].Value;
        if (from.Length > v.Len && (from.AsSpan(v.Len).IndexOfAnyExcept((byte)0) >= 0 || to.AsSpan(v.Len).IndexOfAnyExcept((byte)0) >= 0))
            throw Never(i);
        var op = Resolver.Resolve(_rule, _ctx, v, from.Length, Use.Ordered, i);
        var a = op.Convert(from) ?? throw Never(i);
        var b = op.Convert(to) ?? throw Never(i);
        Add(Matcher.Range(op.Field, a, b, negated: r.Op == RangeExpr.OpNeq), i);
    }

    void Lookup(LookupExpr l, int i)
    {
        var set = _table.Source.FindSet(l.Set) ?? throw _rule.Refuse(i, $"lookup in set '{l.Set}' that does not exist");
        var flags = set.Set.SetFlags;
        int keyLen = (int)(set.Set.KeyLen ?? 0);
        if (keyLen == 0) throw _rule.Refuse(i, $"set '{l.Set}' has no key length");
        var parts = _regs.Read(l.SReg, keyLen, i);
        bool interval = (flags & NftSetFlags.Interval) != 0;
        var (key, ops) = Concat(parts, interval ? Use.Ordered : Use.SetKey, i);
        bool isVmap = l.DReg == NftRegisters.Verdict;
        if (l.DReg is { } d && d != NftRegisters.Verdict)
            throw _rule.Refuse(i, "map lookups that load data into a register are not supported by bpfilter-nft (only sets and verdict maps)");
        string name = _table.UseSet(set, key, ops, isVmap ? SetUseKind.Vmap : SetUseKind.Set, _rule, i);
        if (isVmap)
        {
            if (l.Inverted) throw _rule.Refuse(i, "an inverted verdict map lookup is not supported");
            _vmapKey = key;
            _verdict = IrVerdict.VMap(key, name);
            return;
        }
        Add(Matcher.InSet(key, name, l.Inverted), i);
    }

    void Counter(int i)
    {
        _counters.Add(i);
        if (_counterIndex < 0)
        {
            _counterIndex = i;
            _matchesBeforeCounter = _matches.Count;
        }
    }

    /// <summary>A `log` statement to the kernel log (nflog groups are not run in BPF).</summary>
    void Log(LogExpr l, int i)
    {
        if (_logs.Count == 0) _matchesBeforeLog = _matches.Count;
        _logs.Add((i, LogStatements.Lift(l, e => _rule.Refuse(i, e))));
    }

    /// <summary>An anonymous quota: its state is the rule's own, named by the expression's index.</summary>
    void Quota(QuotaExpr q, int i)
    {
        var key = new StatefulKey(_table.Family, _table.Name, _rule.Chain, _rule.Handle, i, null);
        AddStateful(i, QuotaStatements.Lift(q, _table.Counters.Quotas.GetOrAdd(key), e => _rule.Refuse(i, e)));
    }

    /// <summary>An anonymous limit: its bucket is the rule's own, named by the expression's index.</summary>
    void Limit(LimitExpr l, int i)
    {
        var key = new StatefulKey(_table.Family, _table.Name, _rule.Chain, _rule.Handle, i, null);
        AddStateful(i, LimitStatements.Lift(l, _table.Counters.Limits.GetOrAdd(key), e => _rule.Refuse(i, e)));
    }

    /// <summary>A named object (`counter name "c"`, `quota name "q"`, `limit name "l"`): every rule naming it shares its state.</summary>
    void ObjRef(ObjRefExpr o, int i)
    {
        var name = o.ImmName!;
        var obj = ObjectStatements.Find(_table, name, o.ImmType)
            ?? throw _rule.Refuse(i, $"expression 'objref' names object '{name}', which table {_table.Name} does not hold");
        AddStateful(i, ObjectStatements.Of(_table, obj, e => _rule.Refuse(i, e)));
    }

    /// <summary>
    /// An object chosen per packet through an object map (`counter name ip saddr map { ... }`): the key is
    /// looked up as in a set, a miss breaks, a hit runs the named object's statement. Every object of the
    /// map's type in the table is lifted, as any element may name it.
    /// </summary>
    void ObjRefMap(ObjRefExpr o, int i)
    {
        var set = _table.Source.FindSet(o.SetName!) ?? throw _rule.Refuse(i, $"object map '{o.SetName}' does not exist");
        if ((set.Set.SetFlags & NftSetFlags.Object) == 0) throw _rule.Refuse(i, $"'{set.Name}' is not an object map");
        int keyLen = (int)(set.Set.KeyLen ?? 0);
        if (keyLen == 0) throw _rule.Refuse(i, $"set '{set.Name}' has no key length");
        var parts = _regs.Read(o.SetSReg!.Value, keyLen, i);
        bool interval = (set.Set.SetFlags & NftSetFlags.Interval) != 0;
        var (key, ops) = Concat(parts, interval ? Use.Ordered : Use.SetKey, i);
        var objects = ObjectStatements.OfType(_table, set.Set.ObjType).Select(x => ObjectStatements.Of(_table, x, e => _rule.Refuse(i, e)));
        var name = _table.UseSet(set, key, ops, SetUseKind.Objects, _rule, i);
        AddStateful(i, new ObjectMapStatement(key, name, objects.ToValueList()));
    }

    void AddStateful(int i, Statement s)
    {
        if (_stateful.Count == 0) _matchesBeforeStateful = _matches.Count;
        _stateful.Add((i, s));
    }

    (MatchKey, List<Operand>) Concat(List<(RegValue Value, int Used)> parts, Use use, int i)
    {
        var ops = new List<Operand>(parts.Count);
        for (int k = 0; k < parts.Count; k++)
        {
            var (v, used) = parts[k];
            if (used < v.Len) throw _rule.Refuse(i, $"reads only {used} of the {v.Len} bytes loaded by expression {v.Producer}");
            ops.Add(Resolver.Resolve(_rule, _ctx, v, v.Len, use, i));
        }
        var fields = new Field[ops.Count];
        for (int k = 0; k < ops.Count; k++)
        {
            if (ops[k].Mask != null || ops[k].ShiftLeft != 0) throw _rule.Refuse(i, "a masked value as a set key or concatenation is not supported");
            fields[k] = ops[k].Field;
        }
        return (new MatchKey(fields), ops);
    }

    internal const string LinkLayerOnly = "link-layer (ether, vlan) matches work only in netdev tables and inet ingress chains: " +
        "bpfilter-nft runs netfilter-hook chains without the Ethernet header";

    LiftException Never(int i) =>
        _rule.Refuse(i, "compares with a constant the loaded value can never hold; bpfilter-nft refuses rather than guess");

    // ---- matches and header context

    void Add(Matcher m, int i)
    {
        Dependency? dep = null;
        if (m.Key.Fields.Count == 1 && m.Operator is Compare { Op: CompareOp.Eq } cmp && cmp.Value.Length <= 8)
        {
            var f = m.Key.Fields[0];
            ulong x = cmp.Value.ToUInt64();
            if (f == Fields.NfProto && x is 2 or 10)
            {
                var p = x == 2 ? HeaderProtocol.Ip : HeaderProtocol.Ip6;
                _ctx.L3 = p;
                dep = new Dependency($"meta nfproto {(x == 2 ? "ipv4" : "ipv6")}", [p]);
            }
            else if (f == Fields.Protocol && x is 0x0800 or 0x86dd)
            {
                var p = x == 0x0800 ? HeaderProtocol.Ip : HeaderProtocol.Ip6;
                _ctx.L3 = p;
                dep = new Dependency($"meta protocol {(x == 0x0800 ? "ip" : "ip6")}", [p]);
            }
            else if (f == Fields.L4Proto)
            {
                var p = HeaderContext.L4Of(x);
                _ctx.L4 = p;
                if (p != HeaderProtocol.Raw) dep = new Dependency($"meta l4proto {p.ToString().ToLowerInvariant()}", [p]);
            }
            else if (f == Fields.Ip.Protocol)
            {
                // for IPv4, l4proto is the ip protocol field: a transport field implies it
                var p = HeaderContext.L4Of(x);
                _ctx.L4 = p;
                if (p != HeaderProtocol.Raw) dep = new Dependency($"ip protocol {p.ToString().ToLowerInvariant()}", [p]);
            }
            else if (f is CtField { Key: CtReadKey.L3Proto } && x is 2 or 10)
                _ctx.CtFamily = (byte)x; // kept as a match: it is what fixes the entry's family
            else if (f == Fields.Ip6.Nexthdr)
                _ctx.L4 = HeaderContext.L4Of(x); // not l4proto: extension headers may sit in between, so it stays
            else if (f == Fields.Vlan.Type && x is 0x0800 or 0x86dd)
            {
                // the type behind an 802.1Q tag: at ingress the kernel has untagged the frame (skb_vlan_untag),
                // the network header follows the tag and the IR's ip/ip6 fields imply this very EtherType
                var p = x == 0x0800 ? HeaderProtocol.Ip : HeaderProtocol.Ip6;
                _ctx.L3 = p;
                dep = new Dependency($"vlan type {(x == 0x0800 ? "ip" : "ip6")}", [p]);
            }
            else if (f == Fields.Ether.Type)
            {
                if (x == 0x8100)
                {
                    _ctx.Vlan = true;
                    dep = new Dependency("ether type vlan", [HeaderProtocol.Vlan]);
                }
                else if (x == 0x0800) _ctx.L3 = HeaderProtocol.Ip;
                else if (x == 0x86dd) _ctx.L3 = HeaderProtocol.Ip6;
            }
        }
        _matches.Add(new LiftedMatch(m, i, dep));
    }

    /// <summary>
    /// Drops dependency matches a later header field implies (the IR: a field of a header implies that
    /// header, for every operator). A dependency the IR cannot express must be implied, else refused.
    /// </summary>
    (List<Matcher> Kept, int LastKept) DropImpliedDependencies()
    {
        // from the last match backwards, so that a dependency is judged against the matches that stay;
        // collected backwards and reversed once (not Insert(0), which made long rules quadratic)
        var kept = new List<Matcher>(_matches.Count);
        int lastKept = -1;
        var laterFields = new List<Field>();
        if (_vmapKey != null) laterFields.AddRange(_vmapKey.Fields);
        for (int k = _matches.Count - 1; k >= 0; k--)
        {
            var m = _matches[k];
            if (m.Dependency is { } dep)
            {
                if (ImpliedByAny(laterFields, dep)) continue;
                if (!dep.Expressible)
                    throw _rule.Refuse(m.Index, $"{dep.What} is supported only as the dependency of a link-layer match");
            }
            if (lastKept < 0) lastKept = k;
            kept.Add(m.Matcher!);
            if (m.Matcher != null) laterFields.AddRange(m.Matcher.Key.Fields);
        }
        kept.Reverse();
        return (kept, lastKept);
    }

    static bool ImpliedByAny(List<Field> fields, Dependency dep)
    {
        foreach (var f in fields)
            if (f is PayloadField p && Array.IndexOf(dep.ImpliedBy, p.Protocol) >= 0) return true;
        return false;
    }

    /// <summary>
    /// The IR counts after all matchers: a counter in the middle of a rule is refused.
    /// <paramref name="lastKept"/>: the position in _matches of the last match kept (-1: none).
    /// </summary>
    void CheckCounterPlacement(int lastKept)
    {
        if (_logs.Count > 0 && lastKept >= _matchesBeforeLog)
            throw _rule.Refuse(_logs[0].Index, "a log before a match is not supported: bpfilter-nft runs a rule's statements after all its matches");
        if (_stateful.Count > 0 && lastKept >= _matchesBeforeStateful)
            throw _rule.Refuse(_stateful[0].Index, $"a {_stateful[0].Statement.GetType().Name.Replace("Statement", "").ToLowerInvariant()} before a match " +
                "is not supported: bpfilter-nft runs a rule's statements after all its matches");
        if (_counterIndex < 0) return;
        if (lastKept >= _matchesBeforeCounter)
            throw _rule.Refuse(_counterIndex, "a counter before a match is not supported: bpfilter-nft counts a rule's packets after all its matches");
    }

    /// <summary>`cmp gte a` + `cmp lte b` on one key is the range a-b (nft's range folding). Into an array of the exact size (the rule's matchers).</summary>
    static Matcher[] MergeRanges(List<Matcher> ms)
    {
        int pairs = 0;
        for (int k = 0; k + 1 < ms.Count; k++)
            if (IsRangePair(ms[k], ms[k + 1])) { pairs++; k++; }
        var r = new Matcher[ms.Count - pairs];
        int at = 0;
        for (int k = 0; k < ms.Count; k++)
        {
            if (k + 1 < ms.Count && IsRangePair(ms[k], ms[k + 1]))
            {
                r[at++] = new Matcher(ms[k].Key, new InRange(((Compare)ms[k].Operator).Value, ((Compare)ms[k + 1].Operator).Value));
                k++;
                continue;
            }
            r[at++] = ms[k];
        }
        return r;
    }

    static bool IsRangePair(Matcher lo, Matcher hi) =>
        lo.Operator is Compare { Op: CompareOp.Ge } && hi.Operator is Compare { Op: CompareOp.Le } && lo.Key == hi.Key;

    /// <summary>
    /// `reject` ends the rule with drop after answering. Only netdev's reject (nft_reject_netdev: the reply
    /// is built from the frame and sent back on the device, at ingress only) can be reproduced, at XDP; the
    /// ip/ip6/inet/bridge rejects route their reply or attach conntrack, and a BPF_NETFILTER program cannot
    /// answer at all.
    /// </summary>
    void Reject(RejectExpr r, int i)
    {
        if (_table.Family != NfProto.Netdev)
            throw _rule.Refuse(i, $"expression 'reject' is not supported by bpfilter-nft in {FamilyNames.Of(_table.Family)} tables: " +
                "BPF answers only at a device's ingress (netdev tables); at netfilter hooks the kernel routes its reply");
        _verdict = r.Type switch
        {
            RejectExpr.TypeTcpRst => new RejectVerdict(RejectType.TcpReset),
            RejectExpr.TypeIcmpUnreach => new RejectVerdict(RejectType.IcmpUnreachable, r.IcmpCode ?? throw _rule.Refuse(i, "reject without an icmp code")),
            _ => new RejectVerdict(RejectType.IcmpxUnreachable, r.IcmpCode is { } c and <= RejectVerdict.IcmpxMax ? c
                : throw _rule.Refuse(i, $"reject with icmpx code {r.IcmpCode?.ToString() ?? "(none)"}")),
        };
    }

    IrVerdict Verdict(NftVerdict v, int i) => v.Code switch
    {
        NftVerdict.Accept => IrVerdict.Accept,
        NftVerdict.Drop => IrVerdict.Drop,
        NftVerdict.Continue => IrVerdict.Continue,
        NftVerdict.Return => IrVerdict.Return,
        NftVerdict.Jump => IrVerdict.Jump(_table.ChainTarget(v, _rule, i)),
        NftVerdict.Goto => IrVerdict.Goto(_table.ChainTarget(v, _rule, i)),
        _ => throw _rule.Refuse(i, $"verdict {v} is not supported by bpfilter-nft"),
    };
}
