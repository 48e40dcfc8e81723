using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using NftRule = Nft.Bytecode.Objects.Rule;

namespace Nft.Lifter;

/// <summary>
/// Entry point: nf_tables tables (typed Nft.Bytecode objects) to the backend's IR. Each base chain is
/// lifted on its own, with the regular chains and sets it reaches; regular chains no base chain
/// reaches are lifted alone (nf_tables validates them too). The result holds one value per chain:
/// lifted, or refused with the rule and expression that stopped it.
/// </summary>
public static class NftLifter
{
    /// <summary>Lifts every chain of a namespace; never throws for a construct it cannot lift (see <see cref="LiftResult.Refusals"/>).</summary>
    /// <param name="cache">
    /// Rules lifted by the previous call with this cache, reused when unchanged (<see cref="RuleLiftCache"/>); when rules were only
    /// appended to base chains since, the previous result extended by them (<see cref="PreviousLift"/>).
    /// </param>
    public static LiftResult LiftChains(IEnumerable<SourceTable> tables, CounterSlots? counters = null, RuleLiftCache? cache = null)
    {
        counters ??= new CounterSlots();
        var list = tables as IReadOnlyList<SourceTable> ?? tables.ToList();
        if (cache?.Previous.Extend(list, counters, cache) is { } extended)
        {
            cache.Hits = cache.Previous.Reused;
            cache.Appended = cache.Previous.Appended;
            return extended;
        }
        var acc = new Accumulator();
        int tIdx = 0;
        cache?.BeginLift();
        foreach (var t in list) LiftTable(t, tIdx++, counters, acc, cache);
        cache?.EndLift();
        var result = acc.Build(counters);
        cache?.Previous.Remember(list, result, counters);
        return result;
    }

    /// <summary>All or nothing: the whole namespace, or the first refusal (in ruleset order) as a <see cref="LiftException"/>.</summary>
    public static LiftResult Lift(IEnumerable<SourceTable> tables, CounterSlots? counters = null)
    {
        var r = LiftChains(tables, counters);
        return r.Refusals.Count > 0 ? throw r.Refusals[0].ToException() : r;
    }

    public static LiftResult LiftTable(SourceTable table, CounterSlots? counters = null) => Lift([table], counters);

    /// <summary>
    /// Lifts one rule of <paramref name="chain"/> on its own (e.g. to refuse a NEWRULE at once), with
    /// the sets it reads. The chain's base-chain kind decides whether link-layer matches are possible.
    /// </summary>
    public static LiftedRule LiftRule(SourceTable table, string chain, NftRule rule, CounterSlots? counters = null)
    {
        var ctx = new TableContext(table, counters ?? new CounterSlots());
        var c = table.FindChain(chain);
        bool link = LinkLayer(ctx, c);
        int mark = ctx.SetMark;
        var r = RuleLifter.Lift(ctx, chain, link, rule);
        return new LiftedRule(r, ctx.BuildSetsSince(mark).ToList());
    }

    static void LiftTable(SourceTable t, int tIdx, CounterSlots counters, Accumulator acc, RuleLiftCache? cache)
    {
        var order = new Order(t, tIdx);
        if (t.Flowtables is { Count: > 0 })
        {
            acc.Refuse(order, new LiftRefusal(t.Family, t.Name, null, null, -1, $"flowtable '{t.Flowtables[0].Name}' is not supported by bpfilter-nft"));
            return;
        }
        bool supported = t.Family is NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Inet or NfProto.Netdev;
        if (!supported)
        {
            // a bridge/arp table only filters through base chains; refuse those, lift nothing else
            foreach (var b in t.Chains.Where(c => c.IsBase))
                acc.Add(order, new ChainLift.Refused(new ChainId(t.Family, t.Name, b.Name),
                    new LiftRefusal(t.Family, t.Name, b.Name, null, -1, $"{FamilyNames.Of(t.Family)} family base chains are not supported by bpfilter-nft")));
            return;
        }
        // a dormant table registers no hooks: nothing to enforce
        if ((t.Table.TableFlags & NftTableFlags.Dormant) != 0) return;

        var reached = new HashSet<string>(StringComparer.Ordinal);
        foreach (var c in t.Chains.Where(c => c.IsBase))
        {
            var lift = LiftChain(t, c, counters, order, cache, out var ctx);
            if (lift is ChainLift.Lifted) reached.UnionWith(ctx.Reached);
            acc.Add(order, lift, ctx);
        }
        foreach (var c in t.Chains.Where(c => !c.IsBase && !reached.Contains(c.Name)))
            acc.Add(order, LiftChain(t, c, counters, order, cache, out var ctx), ctx);
    }

    /// <summary>One chain with everything it reaches, in a context of its own.</summary>
    static ChainLift LiftChain(SourceTable t, SourceChain c, CounterSlots counters, Order order, RuleLiftCache? cache, out TableContext ctx)
    {
        ctx = new TableContext(t, counters);
        var id = new ChainId(t.Family, t.Name, c.Name);
        var listing = new List<RuleListing>();
        try
        {
            var attach = c.IsBase ? HookMapper.Map(ctx, c.Chain) : null;
            var rules = LiftRules(ctx, c, attach?.LinkLayer ?? LinkLayer(ctx, c), listing, cache);
            var chains = new List<Chain>();
            if (attach is null) chains.Add(new Chain(ctx.ChainName(c.Name), rules));
            var sets = new List<Set>();
            int done = 0, mark = 0;
            // reached chains may use sets, and verdict maps may reach chains: until nothing new
            while (done < ctx.Reached.Count || mark < ctx.SetMark)
            {
                while (done < ctx.Reached.Count)
                {
                    var r = t.FindChain(ctx.Reached[done++])!;
                    if (r.Name == c.Name) continue;
                    chains.Add(new Chain(ctx.ChainName(r.Name), LiftRules(ctx, r, LinkLayer(ctx, r), listing, cache)));
                }
                int next = ctx.SetMark;
                sets.AddRange(ctx.BuildSetsSince(mark));
                mark = next;
            }
            // a chain reached through a map's elements may write a set built before it
            for (var i = 0; i < sets.Count; i++) sets[i] = ctx.Rebuilt(sets[i]);
            if (attach is { LinkLayer: true } && ctx.FirstCt is { } ct)
                throw new LiftException(t.Family, t.Name, ct.Chain, ct.Handle, ct.Index, $"expression 'ct' in a chain reached from " +
                    $"{c.Name}, which runs at a device: bpfilter-nft reads conntrack only in netfilter-hook programs");
            if (attach != null && ctx.FirstMarkSet is { } ms && attach.Hooks.FirstOrDefault(h => h is not TcEgress) is { } at)
                throw new LiftException(t.Family, t.Name, ms.Chain, ms.Handle, ms.Index, "expression 'meta' setting meta mark in a chain reached from " +
                    $"{c.Name}, which runs {(at is XdpIngress ? "as XDP, before the kernel has an skb to mark" : "at a netfilter hook, where BPF_NETFILTER programs cannot write skb->mark")}: " +
                    "bpfilter-nft sets the mark only in netdev egress chains (tcx)");
            var baseChains = new List<BaseChain>();
            if (attach != null)
            {
                var policy = c.Chain.Policy == 0 ? (Verdict)Verdict.Drop : Verdict.Accept;
                int prio = c.Chain.Hook!.Priority ?? 0;
                for (int i = 0; i < attach.Hooks.Count; i++)
                {
                    var name = ctx.ChainName(c.Name) + (attach.Hooks.Count > 1 ? $"@{DeviceOf(attach.Hooks[i])}" : "");
                    baseChains.Add(new BaseChain(name, attach.Hooks[i], prio, policy, rules));
                }
            }
            return new ChainLift.Lifted(id, baseChains, chains, sets, listing);
        }
        catch (LiftException e)
        {
            return new ChainLift.Refused(id, LiftRefusal.Of(e));
        }
    }

    static ValueList<Rule> LiftRules(TableContext ctx, SourceChain c, bool link, List<RuleListing> listing, RuleLiftCache? cache)
    {
        var rules = new List<Rule>(c.Rules.Count);
        foreach (var r in c.Rules)
        {
            var lifted = cache?.Find(ctx, c.Name, link, r);
            if (lifted == null)
            {
                lifted = RuleLifter.Lift(ctx, c.Name, link, r);
                cache?.Add(ctx, c.Name, link, r, lifted);
            }
            rules.Add(lifted);
            listing.Add(new RuleListing(ctx.Family, ctx.Name, c.Name, r.Handle ?? 0, r.Expressions ?? [], lifted));
        }
        return rules.ToValueList();
    }

    /// <summary>Whether a chain's packets start at the Ethernet header: netdev tables, inet ingress chains.</summary>
    static bool LinkLayer(TableContext ctx, SourceChain? c)
    {
        if (ctx.Family == NfProto.Netdev) return true;
        return ctx.Family == NfProto.Inet && c is { IsBase: true } && c.Chain.Hook!.HookNum == NfHooks.Ingress;
    }

    static string DeviceOf(Hook h) => h switch
    {
        XdpIngress x => x.Device,
        TcIngress x => x.Device,
        TcEgress x => x.Device,
        _ => "",
    };
}
