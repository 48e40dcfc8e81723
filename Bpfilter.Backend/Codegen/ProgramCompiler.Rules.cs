using Bpfilter.Backend.Bpf;
using Bpfilter.Backend.Ir;
using static Bpfilter.Backend.Bpf.Register;
using static Bpfilter.Backend.Codegen.RuntimeContext;

namespace Bpfilter.Backend.Codegen;

public sealed partial class ProgramCompiler
{
    private void EmitRules(IEnumerable<Rule> rules, ChainContext ctx)
    {
        foreach (var rule in rules)
        {
            // An earlier rule always ends the chain: nothing after it runs, its counters stay at zero.
            if (!_asm.Reachable) { _idleCounters.AddRange(rule.CounterIds); continue; }
            EmitRule(rule, ctx);
        }
    }

    private string Where(Rule rule, ChainContext ctx) => rule.Origin ?? $"chain {ctx.Chain}: rule '{rule}'";

    private void EmitRule(Rule rule, ChainContext ctx)
    {
        var next = _asm.NewLabel("next");
        var where = Where(rule, ctx);
        try
        {
            // Static matchers (interface names fixed by the hook) decide at compile time.
            var dynamic = new List<Matcher>();
            foreach (var m in rule.Matchers)
            {
                var s = TryStatic(m);
                if (s == false) return; // can never match: the rule has no code at all
                if (s is null) dynamic.Add(m);
            }
            var deps = Dependencies.Of(dynamic.Select(m => m.Key).Concat(
                rule.Verdict is VerdictMapVerdict vm ? [vm.Key] : []));
            if (deps is null) return; // contradictory header dependencies (tcp and udp): never matches
            // a network header the program never sees (an ip field in the ipv6 program of an inet chain): no code
            // either, so its set lookups give this program no copy of the set (a million addresses were created
            // and filled in both programs); its counters keep their slots, as behind an unreachable rule
            if (deps.EtherType is { } ether && _flavor.FixedEtherType is { } only && ether != only)
            {
                _idleCounters.AddRange(rule.CounterIds);
                return;
            }
            _asm.Comment(rule.ToString());
            // A verdict that inlines chains can be long: conditional jumps (16-bit) then go to a
            // trampoline right after the rule head whose unconditional jump may be far.
            var expands = rule.Verdict is JumpVerdict or GotoVerdict or VerdictMapVerdict or ClassifierVerdict;
            var fail = expands ? _asm.NewLabel("far") : next;
            EmitDependencies(deps, fail);
            foreach (var m in dynamic) EmitMatcher(m, fail);
            foreach (var statement in rule.Statements) EmitStatement(statement, fail);
            if (expands && _asm.IsReferenced(fail))
            {
                var body = _asm.NewLabel("body");
                _asm.Emit(Asm.Ja(body));
                _asm.Label(fail).Emit(Asm.Ja(next));
                _asm.Label(body);
            }
            EmitVerdict(rule.Verdict, ctx, next, where);
        }
        catch (CodegenException e) when (!e.Message.StartsWith(where, StringComparison.Ordinal))
        {
            throw new CodegenException($"{where}: {e.Message}");
        }
        _asm.Label(next);
    }

    /// <param name="next">Where a statement that breaks (NFT_BREAK) sends the packet: the next rule.</param>
    private void EmitStatement(Statement s, string next)
    {
        switch (s)
        {
            case CounterStatement c: EmitCounter(c.Id); break;
            case QuotaStatement q: EmitQuota(q, next); break;
            case LimitStatement l: EmitLimit(l, next); break;
            case ObjectMapStatement o: EmitObjectMap(o, next); break;
            case SetUpdateStatement u: EmitSetUpdate(u, next); break;
            case MetaSetStatement { Key: MetaSetKey.Mark, Value: StatementValue.Immediate mark } when _flavor is TcFlavor:
                // nft_meta_set_eval: skb->mark = value; __sk_buff.mark is writable in tc programs, and later
                // `meta mark` matches read it back from there
                _asm.Emit(Asm.LoadImm64(R1, (long)mark.Value.ToUInt64()), Asm.StxW(R6, 8, R1));
                break;
            case MetaSetStatement { Key: MetaSetKey.Mark } when _flavor is not TcFlavor:
                throw new CodegenException($"statement '{s}': only tc programs can write skb->mark (not {_flavor.ProgramType})");
            case LogStatement { Group: null } l when l.Level <= LogLevel.Debug:
                var id = (uint)_logs.Count + 1;
                _logs[id] = new Log.LogConfig(l.Prefix ?? "", (int)l.Level, (Log.NfLogFlags)l.Flags);
                _flavor.EmitLog(_asm, CompiledProgram.LogEventsMap, id);
                break;
            default: throw new CodegenException($"statement '{s}' is not supported by the BPF backend");
        }
    }

    private bool? TryStatic(Matcher m)
    {
        if (StaticNfProto(m) is { } nf) return nf;
        if (m.Key.Fields.Count != 1 || m.Key.Fields[0] is not MetaField { Key: MetaKey.IifName or MetaKey.OifName } f) return null;
        var s = _flavor.StaticInterfaceName(f.Key);
        if (s is null) return null;
        if (s.Name is null) return false; // no such interface at this hook: nf_tables breaks, even for !=
        var set = m.Operator is InSet i ? _ruleset.FindSet(i.Set) ?? throw new CodegenException($"unknown set '{i.Set}'") : null;
        // an element's counter counts the packets its lookups match, and an element may expire or be
        // added from the packet path between compile and packet: any of these and the lookup runs
        if (set is not null && (set.Timeouts || set.PacketWritten || set.Elements.Any(e => !e.Statements.IsEmpty))) return null;
        return StaticEval.Evaluate(m.Operator, s.Name, set);
    }

    /// <summary>
    /// `meta nfproto` in a netfilter program: the program runs for one family, so the value is the constant
    /// the matcher's code would load (MetaMatcher). Decided here, a rule for the other family has no code (nor
    /// set maps) also when nft's explicit `meta nfproto ipv4` stays a match (no ip field implies it). Null when
    /// the matcher is not such a comparison of one byte.
    /// </summary>
    private bool? StaticNfProto(Matcher m)
    {
        if (_flavor is not NetfilterFlavor || _flavor.FixedNfProto is not int nf) return null;
        if (m.Key.Fields.Count != 1 || m.Key.Fields[0] is not MetaField { Key: MetaKey.NfProto }) return null;
        bool oneByte = m.Operator switch
        {
            Compare c => c.Value.Length == 1,
            InRange r => r.From.Length == 1 && r.To.Length == 1,
            Masked k => k.Mask.Length == 1 && k.Value.Length == 1,
            _ => false,
        };
        return oneByte ? StaticEval.Evaluate(m.Operator, Value.FromUInt((ulong)nf, 8), null) : null;
    }

    private void EmitVerdict(Verdict v, ChainContext ctx, string next, string where)
    {
        switch (v)
        {
            case AcceptVerdict or DropVerdict: EmitTerminal(v, ctx, where); break;
            case ContinueVerdict: break;
            case ReturnVerdict when ctx.ReturnPolicy is { } policy: EmitTerminal(policy, ctx, where); break;
            case ReturnVerdict: _asm.Emit(Asm.Ja(ctx.Return)); break;
            case JumpVerdict j when CallsSubprogram(j.Chain, ctx): EmitCall(j.Chain, ctx, where); _asm.Emit(Asm.Ja(next)); break;
            case JumpVerdict j: Inline(j.Chain, ctx, returnTo: next, where); _asm.Emit(Asm.Ja(next)); break;
            case GotoVerdict g:
                if (CallsSubprogram(g.Chain, ctx)) EmitCall(g.Chain, ctx, where);
                else Inline(g.Chain, ctx, returnTo: ctx.Return, where);
                EmitVerdict(Verdict.Return, ctx, next, where); // falling off a goto target returns from this chain
                break;
            case VerdictMapVerdict vm: EmitVerdictMap(vm, ctx, next, where); break;
            case RejectVerdict r:
                // netdev's reject answers on the receiving device; elsewhere the kernel routes its reply
                if (_flavor is not XdpFlavor || ctx.NfProto != 5)
                    throw new CodegenException($"{r} runs in BPF only in netdev ingress chains (XDP)");
                if (ctx.Subprogram) { EmitSubprogramVerdict(r, where); break; }
                if (!_rejects.Contains(r)) _rejects.Add(r);
                _asm.Emit(Asm.Ja(XdpReject.Label(r)));
                break;
            case ClassifierVerdict c: EmitClassifier(c, ctx, next, where); break;
            default: throw new CodegenException($"unsupported verdict {v}");
        }
    }

    private void Inline(string name, ChainContext ctx, string returnTo, string where)
    {
        var chain = _ruleset.FindChain(name) ?? throw new CodegenException($"{where}: unknown chain '{name}'");
        if (ctx.Path.Contains(name)) throw new CodegenException($"{where}: jump loop through chain '{name}'");
        if (ctx.Depth + 1 > MaxJumpDepth) throw new CodegenException($"{where}: jumps nested deeper than {MaxJumpDepth}");
        // A goto from a base chain keeps its policy as the return action; a jump returns to the next rule.
        var policy = returnTo == ctx.Return ? ctx.ReturnPolicy : null;
        var inner = ctx with { Chain = name, Return = returnTo, Depth = ctx.Depth + 1, Path = ctx.Path.Push(name), ReturnPolicy = policy };
        EmitRules(chain.Rules, inner);
        _idleCounters.AddRange(chain.IdleCounters);
    }

    private void EmitVerdictMap(VerdictMapVerdict vm, ChainContext ctx, string next, string where)
    {
        var layout = Layout(vm.Map, vm.Key, requireVerdicts: true);
        EmitLookup(layout, vm.Key, next);
        _asm.Emit(Asm.LdxW(R9, R0, 0));
        // a statement that breaks breaks the rule: the verdict the lookup copied is not taken (NFT_BREAK)
        _verdictCodeInR9 = true;
        EmitElementStatements(layout, next);
        _verdictCodeInR9 = false;
        foreach (var v in layout.VerdictCodes)
            if (v is VerdictMapVerdict or ContinueVerdict) throw new CodegenException($"vmap '{vm.Map}': verdict {v} not allowed in a map");
        EmitVerdictDispatch(layout.VerdictCodes, ctx, next, where);
    }

    /// <summary>Runs verdict number R9 (1-based) of <paramref name="codes"/>; any other value goes to next.</summary>
    private void EmitVerdictDispatch(IReadOnlyList<Verdict> codes, ChainContext ctx, string next, string where)
    {
        // Dispatch first (each test skips one unconditional, possibly far, jump), then the verdict bodies; a verdict
        // that ends the program in place (r0 = code; exit) is its own short body, right behind its test.
        var bodies = new List<string?>();
        for (var i = 0; i < codes.Count; i++)
        {
            var skip = _asm.NewLabel("vm");
            if (EndsInPlace(codes[i], ctx))
            {
                bodies.Add(null);
                _asm.Emit(Asm.JneImm(R9, i + 1, skip));
                EmitTerminal(codes[i], ctx, where);
                _asm.Label(skip);
                continue;
            }
            var body = _asm.NewLabel("vmbody");
            bodies.Add(body);
            _asm.Emit(Asm.JneImm(R9, i + 1, skip), Asm.Ja(body));
            _asm.Label(skip);
        }
        _asm.Emit(Asm.Ja(next));
        for (var i = 0; i < codes.Count; i++)
        {
            if (bodies[i] is null) continue;
            _asm.Label(bodies[i]!);
            EmitVerdict(codes[i], ctx, next, where);
            _asm.Emit(Asm.Ja(next));
        }
    }

    /// <summary>Whether <see cref="EmitTerminal"/> ends the program with this verdict in place (two instructions, no jump).</summary>
    private static bool EndsInPlace(Verdict v, ChainContext ctx) =>
        !ctx.Subprogram && (v is DropVerdict || (v is AcceptVerdict && ctx.Accept == AcceptLabel));

    /// <summary>
    /// nft_objref_map_eval: the key's element names the object (its code in the map value); a miss breaks,
    /// a hit runs that object's statement, which breaks on its own terms (quota, limit).
    /// </summary>
    private void EmitObjectMap(ObjectMapStatement o, string next)
    {
        var layout = Layout(o.Map, o.Key, requireVerdicts: false, o.Objects);
        EmitLookup(layout, o.Key, next);
        _asm.Emit(Asm.LdxW(R9, R0, 0));
        var bodies = new List<string>();
        for (var i = 0; i < o.Objects.Count; i++)
        {
            var skip = _asm.NewLabel("om");
            bodies.Add(_asm.NewLabel("ombody"));
            _asm.Emit(Asm.JneImm(R9, i + 1, skip), Asm.Ja(bodies[i]));
            _asm.Label(skip);
        }
        _asm.Emit(Asm.Ja(next)); // no code the program knows: the map holds none, break as a miss would
        var done = _asm.NewLabel("omdone");
        for (var i = 0; i < o.Objects.Count; i++)
        {
            _asm.Label(bodies[i]);
            if (o.Objects[i] is not (CounterStatement or QuotaStatement or LimitStatement))
                throw new CodegenException($"object map '{o.Map}': object statement '{o.Objects[i]}' is not supported by the BPF backend");
            EmitStatement(o.Objects[i], next);
            _asm.Emit(Asm.Ja(done));
        }
        _asm.Label(done);
    }

    private int CounterSlot(ulong id)
    {
        if (_counterSlots.TryGetValue(id, out var slot)) return slot;
        if (_counterHint == null || !_counterHint.Slots.TryGetValue(id, out slot)) slot = _nextCounterSlot++;
        return _counterSlots[id] = slot;
    }

    private void EmitCounter(ulong id)
    {
        var slot = CounterSlot(id);
        var skip = _asm.NewLabel("nocount");
        _asm.Emit(Asm.StW(R10, CounterKey, slot));
        EmitCountAtKey(skip);
        _asm.Label(skip);
    }

    /// <summary>Adds the packet and its bytes to the counter whose slot is at CounterKey on the stack (clobbers R0-R3).</summary>
    private void EmitCountAtKey(string skip)
    {
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, CounterKey),
            Asm.LoadMapFd(R1, CompiledProgram.CountersMap), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, skip),
            Asm.LdxDW(R1, R0, 0), Asm.Add64Imm(R1, 1), Asm.StxDW(R0, 0, R1));
        EmitLength(R2);
        _asm.Emit(Asm.LdxDW(R1, R0, 8), Asm.Add64Reg(R1, R2), Asm.StxDW(R0, 8, R1));
    }

    /// <summary>
    /// nft_quota: consumed = atomic64_add_return(skb->len, consumed) (one shared u64 per state slot), then
    /// `until` breaks when consumed &gt; bytes and `over` breaks when it is not.
    /// </summary>
    private void EmitQuota(QuotaStatement q, string next)
    {
        if (!Loader.QuotaMap.Holds(q.StateSlot))
            throw new CodegenException($"quota state slot {q.StateSlot}: the BPF backend holds at most {Loader.QuotaMap.Capacity} quotas");
        _asm.Emit(Asm.StW(R10, CounterKey, (int)q.StateSlot));
        EmitQuotaAtKey(q, next);
    }

    /// <summary><see cref="EmitQuota"/> on the state slot at CounterKey on the stack (a set element's).</summary>
    private void EmitQuotaAtKey(QuotaStatement q, string next)
    {
        _usesQuotas = true;
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, CounterKey),
            Asm.LoadMapFd(R1, CompiledProgram.QuotasMap), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, next));
        EmitLength(R1);
        _asm.Emit(Asm.Mov64Reg(R2, R1), Asm.AtomicFetchAdd64(R0, 0, R1), Asm.Add64Reg(R1, R2),
            Asm.LoadImm64(R3, (long)q.Bytes), q.Over ? Asm.JleReg(R1, R3, next) : Asm.JgtReg(R1, R3, next));
    }

    /// <summary>
    /// nft_limit_eval on the slot's shared bucket: under the bucket's spin lock, tokens = min(tokens + now -
    /// last, tokens_max), last = now, and the packet's cost (nsecs / rate per packet; nsecs * skb->len / rate
    /// per byte) is taken when tokens - cost &gt;= 0 (signed, as the kernel's s64 delta). Within the budget
    /// `over` breaks; beyond it the plain limit breaks. The verifier forbids calls while the lock is held, so
    /// the cost and the clock are read before it: now is read just before the lock, and taken as `last` when
    /// another CPU's update under the lock was later (the kernel reads the clock under the lock).
    /// </summary>
    private void EmitLimit(LimitStatement l, string next)
    {
        if (!Loader.LimitMap.Holds(l.StateSlot))
            throw new CodegenException($"limit state slot {l.StateSlot}: the BPF backend holds at most {Loader.LimitMap.Capacity} limits");
        _asm.Emit(Asm.StW(R10, CounterKey, (int)l.StateSlot));
        EmitLimitAtKey(l, next);
    }

    /// <summary>
    /// <see cref="EmitLimit"/> on the state slot at CounterKey on the stack (a set element's); the map lookup fails past the map's end.
    /// The bucket's pointer lives in R9 across the calls (a pointer spilled to the frame would keep its chain from being a
    /// global function, which sees the frame as plain bytes); R9's own value, when it holds a verdict map's code, waits in the frame.
    /// </summary>
    private void EmitLimitAtKey(LimitStatement l, string next)
    {
        _usesLimits = true;
        EmitLimitCost(l, Scratch + 16);
        _asm.Emit(Asm.Mov64Reg(R2, R10), Asm.Add64Imm(R2, CounterKey),
            Asm.LoadMapFd(R1, CompiledProgram.LimitsMap), Asm.Call(HelperFunc.MapLookupElem), Asm.JeqImm(R0, 0, next));
        EmitTokenBucket(l, next, Scratch);
    }

    /// <summary>A byte limit's cost of this packet (nsecs * length / rate) to the frame at <paramref name="cost"/>, read before the lock (no calls under it).</summary>
    private void EmitLimitCost(LimitStatement l, int cost)
    {
        if (l.Type != LimitType.Bytes) return;
        EmitLength(R1);
        _asm.Emit(Asm.LoadImm64(R2, (long)l.Nsecs), Asm.Alu64Reg(AluOp.Mul, R1, R2),
            Asm.LoadImm64(R2, (long)l.Rate), Asm.Alu64Reg(AluOp.Div, R1, R2), Asm.StxDW(R10, (short)cost, R1));
    }

    /// <summary>
    /// nft_limit_eval on the bucket R0 points to (a <see cref="Loader.LimitMap"/> value: a slot's or an element's), the
    /// byte cost at <paramref name="frame"/> + 16 (<see cref="EmitLimitCost"/>); the frame's three u64 from
    /// <paramref name="frame"/> hold R9's value and the clock.
    /// </summary>
    private void EmitTokenBucket(LimitStatement l, string next, int frame)
    {
        short saved = (short)frame, now = (short)(frame + 8), cost = (short)(frame + 16);
        // R9 may hold nothing yet: the verifier refuses to store an uninitialized register
        Instruction[] restore = _verdictCodeInR9 ? [Asm.LdxDW(R9, R10, saved)] : [];
        if (_verdictCodeInR9) _asm.Emit(Asm.StxDW(R10, saved, R9));
        _asm.Emit(Asm.Mov64Reg(R9, R0), Asm.Call(HelperFunc.KtimeGetNs), Asm.StxDW(R10, now, R0),
            Asm.Mov64Reg(R1, R9), Asm.Call(HelperFunc.SpinLock));
        var later = _asm.NewLabel("limnow");
        var capped = _asm.NewLabel("limcap");
        var short_ = _asm.NewLabel("limshort");
        TokenBucket.EmitRefill(_asm, l, Asm.LdxDW(R2, R10, now), later, capped);
        if (l.Type == LimitType.Bytes) _asm.Emit(Asm.LdxDW(R5, R10, cost));
        else _asm.Emit(Asm.LoadImm64(R5, (long)l.PacketCost));
        var done = _asm.NewLabel("limdone");
        _asm.Emit(Asm.Mov64Reg(R0, R4), Asm.Sub64Reg(R0, R5), Asm.JumpImm(JumpOp.Jslt, R0, 0, short_),
            Asm.StxDW(R1, Loader.LimitMap.Tokens, R0), Asm.Call(HelperFunc.SpinUnlock));
        _asm.Emit(restore);
        _asm.Emit(l.Over ? Asm.Ja(next) : Asm.Ja(done));
        _asm.Label(short_);
        _asm.Emit(Asm.StxDW(R1, Loader.LimitMap.Tokens, R4), Asm.Call(HelperFunc.SpinUnlock));
        _asm.Emit(restore);
        if (!l.Over) _asm.Emit(Asm.Ja(next));
        _asm.Label(done);
    }

    /// <summary>R9 holds a verdict map's code, which the element statements must keep for the dispatch after them.</summary>
    private bool _verdictCodeInR9;

    /// <summary>Packet length as nf_tables sees skb->len at this hook (ingress: from the network header).</summary>
    private void EmitLength(Register dst)
    {
        _asm.Emit(Asm.LdxW(dst, R10, PacketSize));
        if (_flavor.LengthFromNetworkHeader) _asm.Emit(Asm.LdxW(R3, R10, L3Off), Asm.Sub64Reg(dst, R3));
    }
}
