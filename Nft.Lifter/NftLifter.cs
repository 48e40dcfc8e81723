using Bpfilter.Backend.Ir;
using Nft.Bytecode;
using NftRule = Nft.Bytecode.Objects.Rule;

namespace Nft.Lifter;

/// <summary>
/// Entry point: nf_tables tables (typed Nft.Bytecode objects) to the backend's IR. All or nothing:
/// the first construct that cannot be proven equivalent throws <see cref="LiftException"/>.
/// </summary>
public static class NftLifter
{
    /// <summary>Lifts every table of a namespace into one ruleset.</summary>
    public static LiftResult Lift(IEnumerable<SourceTable> tables, CounterSlots? counters = null)
    {
        counters ??= new CounterSlots();
        var baseChains = new List<BaseChain>();
        var chains = new List<Chain>();
        var sets = new List<Set>();
        var used = new Dictionary<CounterKey, ulong>();
        var setNames = new Dictionary<(byte, string, string), string>();
        var listing = new List<RuleListing>();
        foreach (var t in tables)
        {
            var ctx = new TableContext(t, counters);
            LiftTable(ctx, baseChains, chains, listing);
            foreach (var s in ctx.BuildSets()) sets.Add(s);
            foreach (var s in t.Sets)
                if (sets.Any(x => x.Name == ctx.SetName(s.Name))) setNames[(t.Family, t.Name, s.Name)] = ctx.SetName(s.Name);
        }
        foreach (var r in listing)
            if (r.Lifted.CounterId is { } id)
                used[new CounterKey(r.Family, r.Table, r.Chain, r.Handle)] = id;
        var rs = new Ruleset(baseChains.ToValueList(), chains.ToValueList(), sets.ToValueList());
        return new LiftResult(rs, used, setNames, listing);
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

    static void LiftTable(TableContext ctx, List<BaseChain> baseChains, List<Chain> chains, List<RuleListing> listing)
    {
        var t = ctx.Source;
        if (t.Flowtables is { Count: > 0 })
            throw new LiftException(t.Family, t.Name, null, null, -1, $"flowtable '{t.Flowtables[0].Name}' is not supported by bpfilter-nft");
        bool supported = t.Family is NfProto.Ipv4 or NfProto.Ipv6 or NfProto.Inet or NfProto.Netdev;
        if (!supported)
        {
            // a bridge/arp table only filters through base chains; refuse those, lift nothing else
            var b = t.Chains.FirstOrDefault(c => c.IsBase);
            if (b != null)
                throw new LiftException(t.Family, t.Name, b.Name, null, -1, $"{FamilyNames.Of(t.Family)} family base chains are not supported by bpfilter-nft");
            return;
        }
        // a dormant table registers no hooks: nothing to enforce
        if ((t.Table.TableFlags & NftTableFlags.Dormant) != 0) return;

        foreach (var c in t.Chains)
        {
            var attach = c.IsBase ? HookMapper.Map(ctx, c.Chain) : null;
            bool link = attach?.LinkLayer ?? LinkLayer(ctx, c);
            var rules = new List<Rule>();
            foreach (var r in c.Rules)
            {
                var lifted = RuleLifter.Lift(ctx, c.Name, link, r);
                rules.Add(lifted);
                listing.Add(new RuleListing(t.Family, t.Name, c.Name, r.Handle ?? 0, r.Expressions ?? [], lifted));
            }
            var list = rules.ToValueList();
            if (attach is null)
            {
                chains.Add(new Chain(ctx.ChainName(c.Name), list));
                continue;
            }
            var policy = c.Chain.Policy == 0 ? (Verdict)Verdict.Drop : Verdict.Accept;
            int prio = c.Chain.Hook!.Priority ?? 0;
            for (int i = 0; i < attach.Hooks.Count; i++)
            {
                var name = ctx.ChainName(c.Name) + (attach.Hooks.Count > 1 ? $"@{DeviceOf(attach.Hooks[i])}" : "");
                baseChains.Add(new BaseChain(name, attach.Hooks[i], prio, policy, list));
            }
        }
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
