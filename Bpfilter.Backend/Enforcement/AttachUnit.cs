using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Enforcement;

/// <summary>
/// The base chains that run as one BPF program at one attach point, in priority order. Netfilter
/// units are per protocol family, hook and priority: an inet chain joins the ipv4 and the ipv6 unit of
/// its hook and priority (so an ip and an inet chain at one priority run in one program, in creation
/// order, as nf_tables registers equal priorities); distinct priorities are distinct links, which the
/// kernel runs in priority order, NF_ACCEPT going on to the next and NF_DROP ending the traversal.
/// XDP and tcx units are per device and direction, every chain there compiled into one program.
/// </summary>
public sealed record AttachUnit(string Key, Hook Hook, bool Ipv6, IReadOnlyList<BaseChain> Chains)
{
    /// <summary>NFPROTO_IPV4 or NFPROTO_IPV6 for netfilter units.</summary>
    public int ProtocolFamily => Ipv6 ? 10 : 2;

    /// <summary>
    /// The order a hook runs its chains in: by priority, and among equal priorities the one registered
    /// last first, as nf_hook_entries_grow inserts a new hook before the first one whose priority is not
    /// lower (the chains come in creation order).
    /// </summary>
    public static List<BaseChain> RunOrder(IEnumerable<BaseChain> chains) =>
        chains.Select((c, i) => (Chain: c, Index: i)).OrderBy(x => x.Chain.Priority).ThenByDescending(x => x.Index).Select(x => x.Chain).ToList();

    public static List<AttachUnit> Group(Ruleset ruleset)
    {
        var order = new List<string>();
        var units = new Dictionary<string, (Hook Hook, bool Ipv6, List<BaseChain> Chains)>();
        void Add(string key, Hook hook, bool ipv6, BaseChain chain)
        {
            if (!units.TryGetValue(key, out var u))
            {
                u = (hook, ipv6, []);
                units[key] = u;
                order.Add(key);
            }
            u.Chains.Add(chain);
        }
        foreach (var c in ruleset.BaseChains)
        {
            if (c.Hook is NetfilterHook n)
            {
                var families = n.Family == NfFamily.Inet ? new[] { NfFamily.Ipv4, NfFamily.Ipv6 } : [n.Family];
                foreach (var f in families)
                {
                    var hook = new NetfilterHook(f, n.Point, c.Priority);
                    Add(hook.AttachPoint, hook, f == NfFamily.Ipv6, c with { Hook = hook });
                }
            }
            else Add(c.Hook.AttachPoint, c.Hook, false, c);
        }
        // OrderBy is stable: equal priorities keep creation order (the compiler runs them as the kernel would, RunOrder).
        return order.Select(k => new AttachUnit(k, units[k].Hook, units[k].Ipv6, units[k].Chains.OrderBy(c => c.Priority).ToList())).ToList();
    }

    /// <summary>The device a direct (XDP/tcx) unit attaches to; null for netfilter.</summary>
    public string? Device => Hook switch
    {
        XdpIngress x => x.Device,
        TcIngress t => t.Device,
        TcEgress t => t.Device,
        _ => null,
    };
}
