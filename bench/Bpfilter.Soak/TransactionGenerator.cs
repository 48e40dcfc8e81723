using System.Collections.Immutable;
using System.Text;

namespace Bpfilter.Soak;

/// <summary>
/// Random transactions over a small name space (a few tables of each family, chains at ingress,
/// prerouting and input, rules on a small pool of UDP ports, named sets), so that later commands
/// keep hitting what earlier ones made. Each command is generated against the model as the batch
/// has changed it so far; a failing batch ends with one command the kernel refuses.
/// </summary>
public sealed class TransactionGenerator(Random random, string device, string fixedTable, bool kernelPlacedRules)
{
    public const int FirstPort = 20000, PoolSize = 16;
    const int MaxTables = 5, MaxChains = 3, MaxRules = 8, MaxSets = 2;
    static readonly string[] Families = ["ip", "inet", "netdev"];

    int _nextRuleId = 1;

    public static IEnumerable<int> Pool => Enumerable.Range(FirstPort, PoolSize);

    /// <summary>A batch of one to four commands; about one in six ends with a failing command.</summary>
    /// <param name="handles">rule id → handle, from the last listing (only committed rules have one)</param>
    public SoakTransaction Next(SoakRuleset ruleset, IReadOnlyDictionary<int, long> handles)
    {
        // alone: nft does not load its cache for a batch that flushes the ruleset, so commands before
        // the flush could not find what they name
        if (random.Next(200) == 0) return new SoakTransaction($"flush ruleset\n{fixedTable}", "flush ruleset", SoakRuleset.Empty);
        var text = new StringBuilder();
        var words = new List<string>();
        var model = ruleset;
        var commands = random.Next(1, 5);
        for (int i = 0; i < commands; i++)
        {
            var step = Step(model, handles);
            if (step == null) continue;
            text.Append(step.Value.Text);
            words.Add(step.Value.Word);
            model = step.Value.After;
        }
        if (random.Next(6) == 0 && Failing(model, handles) is { } fail)
            return new SoakTransaction(text.Append(fail.Text).ToString(), string.Join(", ", [.. words, "failing " + fail.Word]), null);
        if (words.Count == 0) return Next(ruleset, handles);
        return new SoakTransaction(text.ToString(), string.Join(", ", words), model);
    }

    (string Text, string Word, SoakRuleset After)? Step(SoakRuleset m, IReadOnlyDictionary<int, long> handles) =>
        random.Next(100) switch
        {
            < 8 => AddTable(m),
            < 11 => DeleteTable(m),
            < 22 => AddChain(m),
            < 25 => DeleteChain(m),
            < 50 => AddRule(m),
            < 58 => DeleteRule(m, handles),
            < 63 => ReplaceRule(m, handles),
            < 69 => AddSet(m),
            < 71 => DeleteSet(m),
            < 84 => AddElements(m),
            < 91 => DeleteElements(m),
            < 93 => FlushSet(m),
            < 96 => FlushChain(m),
            _ => FlushTable(m),
        };

    T? Pick<T>(IEnumerable<T> items) where T : class
    {
        var list = items.ToList();
        return list.Count == 0 ? null : list[random.Next(list.Count)];
    }

    (string, string, SoakRuleset)? AddTable(SoakRuleset m)
    {
        if (m.Tables.Count >= MaxTables) return null;
        var family = Families[random.Next(Families.Length)];
        var name = "s" + random.Next(3);
        if (m.Tables.Any(t => t.Family == family && t.Name == name)) return null;
        var table = new SoakTable(family, name, [], []);
        return ($"add table {table.Id}\n", "add table", m with { Tables = m.Tables.Add(table) });
    }

    (string, string, SoakRuleset)? DeleteTable(SoakRuleset m) =>
        Pick(m.Tables) is { } t ? ($"delete table {t.Id}\n", "delete table", m with { Tables = m.Tables.Remove(t) }) : null;

    static IReadOnlyList<SoakHook> Hooks(string family) => family switch
    {
        "netdev" => [SoakHook.Ingress],
        "ip" => [SoakHook.Prerouting, SoakHook.Input],
        _ => [SoakHook.Ingress, SoakHook.Prerouting, SoakHook.Input],
    };

    (string, string, SoakRuleset)? AddChain(SoakRuleset m)
    {
        if (Pick(m.Tables.Where(t => t.Chains.Count < MaxChains)) is not { } t) return null;
        var name = "c" + random.Next(MaxChains);
        if (t.Chains.Any(c => c.Name == name)) return null;
        var hooks = Hooks(t.Family);
        var hook = hooks[random.Next(hooks.Count)];
        // unique per hook across tables: equal priorities would run in registration order, which a
        // restart may not keep
        var used = m.AllChains.Where(x => x.Chain.Hook == hook).Select(x => x.Chain.Priority).ToHashSet();
        var free = Enumerable.Range(-15, 31).Select(p => p * 10).Where(p => !used.Contains(p)).ToList();
        var priority = free[random.Next(free.Count)];
        var chain = new SoakChain(name, hook, priority, []);
        var dev = hook == SoakHook.Ingress ? $" device \"{device}\"" : "";
        return ($"add chain {t.Id} {name} {{ type filter hook {hook.ToString().ToLowerInvariant()}{dev} priority {priority}; policy accept; }}\n",
            "add chain", m.With(t with { Chains = t.Chains.Add(chain) }));
    }

    (string, string, SoakRuleset)? DeleteChain(SoakRuleset m)
    {
        if (Pick(m.AllChains.Select(x => Tuple.Create(x.Table, x.Chain))) is not { } p) return null;
        var (t, c) = p;
        // flush first: whether `delete chain` takes a chain's rules with it depends on the kernel
        return ($"flush chain {t.Id} {c.Name}\ndelete chain {t.Id} {c.Name}\n", "delete chain", m.With(t with { Chains = t.Chains.Remove(c) }));
    }

    ImmutableSortedSet<int> RandomPorts(int min, int max) =>
        Enumerable.Range(0, random.Next(min, max + 1)).Select(_ => FirstPort + random.Next(PoolSize)).ToImmutableSortedSet();

    /// <summary>A new rule's text after the chain (match, counter, verdict, comment) and the rule.</summary>
    (string Text, SoakRule Rule) NewRule(SoakTable t, SoakChain c)
    {
        var id = _nextRuleId++;
        var verdict = random.Next(4) switch { 0 => "", 1 => "accept", _ => "drop" };
        string match;
        SoakMatch what;
        switch (random.Next(10))
        {
            case < 4:
                var port = FirstPort + random.Next(PoolSize);
                what = new SoakMatch([port]);
                match = $"udp dport {port}";
                break;
            case < 6:
                what = new SoakMatch(RandomPorts(2, 3));
                match = $"udp dport {{ {string.Join(", ", what.Ports)} }}";
                break;
            case < 7:
                var lo = FirstPort + random.Next(PoolSize - 3);
                var hi = lo + random.Next(1, 4);
                what = new SoakMatch(Enumerable.Range(lo, hi - lo + 1).ToImmutableSortedSet());
                match = $"udp dport {lo}-{hi}";
                break;
            case < 9 when t.Sets.Count > 0:
                var set = t.Sets[random.Next(t.Sets.Count)];
                what = new SoakMatch([], set.Name);
                match = $"udp dport @{set.Name}";
                break;
            default:
                if (kernelPlacedRules && c.Hook != SoakHook.Ingress)
                {
                    // BPF does not run ct helper: the chain is placed in the kernel's nf_tables
                    what = new SoakMatch([], Never: true);
                    match = "ct helper \"ftp\"";
                }
                else
                {
                    var p2 = FirstPort + random.Next(PoolSize);
                    what = new SoakMatch([p2]);
                    match = $"ip protocol udp udp dport {p2}";
                }
                break;
        }
        var rule = new SoakRule(id, what, verdict);
        return ($"{match} counter{(verdict.Length > 0 ? " " + verdict : "")} comment \"r{id}\"", rule);
    }

    (string, string, SoakRuleset)? AddRule(SoakRuleset m)
    {
        if (Pick(m.AllChains.Where(x => x.Chain.Rules.Count < MaxRules).Select(x => Tuple.Create(x.Table, x.Chain))) is not { } p) return null;
        var (t, c) = p;
        var (text, rule) = NewRule(t, c);
        var insert = random.Next(4) == 0;
        var chain = c with { Rules = insert ? c.Rules.Insert(0, rule) : c.Rules.Add(rule) };
        return ($"{(insert ? "insert" : "add")} rule {t.Id} {c.Name} {text}\n", insert ? "insert rule" : "add rule", m.With(t.With(chain)));
    }

    /// <summary>A committed rule (one with a handle) of the model.</summary>
    Tuple<SoakTable, SoakChain, SoakRule, long>? CommittedRule(SoakRuleset m, IReadOnlyDictionary<int, long> handles) =>
        Pick(m.AllChains.SelectMany(x => x.Chain.Rules.Where(r => handles.ContainsKey(r.Id)).Select(r => Tuple.Create(x.Table, x.Chain, r, handles[r.Id]))));

    (string, string, SoakRuleset)? DeleteRule(SoakRuleset m, IReadOnlyDictionary<int, long> handles)
    {
        if (CommittedRule(m, handles) is not { } p) return null;
        var (t, c, r, h) = p;
        return ($"delete rule {t.Id} {c.Name} handle {h}\n", "delete rule", m.With(t.With(c with { Rules = c.Rules.Remove(r) })));
    }

    (string, string, SoakRuleset)? ReplaceRule(SoakRuleset m, IReadOnlyDictionary<int, long> handles)
    {
        if (CommittedRule(m, handles) is not { } p) return null;
        var (t, c, r, h) = p;
        var (text, rule) = NewRule(t, c);
        return ($"replace rule {t.Id} {c.Name} handle {h} {text}\n", "replace rule", m.With(t.With(c with { Rules = c.Rules.Replace(r, rule) })));
    }

    (string, string, SoakRuleset)? AddSet(SoakRuleset m)
    {
        if (Pick(m.Tables.Where(t => t.Sets.Count < MaxSets)) is not { } t) return null;
        var name = "set" + random.Next(MaxSets);
        if (t.Sets.Any(s => s.Name == name)) return null;
        var interval = random.Next(3) == 0;
        var set = new SoakSet(name, interval, []);
        return ($"add set {t.Id} {name} {{ type inet_service;{(interval ? " flags interval;" : "")} }}\n", "add set", m.With(t with { Sets = t.Sets.Add(set) }));
    }

    static bool Referenced(SoakTable t, SoakSet s) => t.Chains.Any(c => c.Rules.Any(r => r.Match.SetName == s.Name));

    (string, string, SoakRuleset)? DeleteSet(SoakRuleset m)
    {
        if (Pick(m.Tables.SelectMany(t => t.Sets.Where(s => !Referenced(t, s)).Select(s => Tuple.Create(t, s)))) is not { } p) return null;
        var (t, s) = p;
        return ($"delete set {t.Id} {s.Name}\n", "delete set", m.With(t with { Sets = t.Sets.Remove(s) }));
    }

    Tuple<SoakTable, SoakSet>? AnySet(SoakRuleset m) => Pick(m.Tables.SelectMany(t => t.Sets.Select(s => Tuple.Create(t, s))));

    (string, string, SoakRuleset)? AddElements(SoakRuleset m)
    {
        if (AnySet(m) is not { } p) return null;
        var (t, s) = p;
        // new ports only: re-adding an element of an interval set is an overlap for nft; and none next to
        // another in an interval set, where nft would merge them into a range that single ports cannot delete
        var ports = RandomPorts(1, 3).Except(s.Elements);
        if (s.Interval)
            ports = ports.Aggregate(ImmutableSortedSet<int>.Empty, (kept, p) =>
                s.Elements.Contains(p - 1) || s.Elements.Contains(p + 1) || kept.Contains(p - 1) || kept.Contains(p + 1) ? kept : kept.Add(p));
        if (ports.Count == 0) return null;
        return ($"add element {t.Id} {s.Name} {{ {string.Join(", ", ports)} }}\n", "add element",
            m.With(t.With(s with { Elements = s.Elements.Union(ports) })));
    }

    (string, string, SoakRuleset)? DeleteElements(SoakRuleset m)
    {
        if (AnySet(m) is not { } p || p.Item2.Elements.Count == 0) return null;
        var (t, s) = p;
        var ports = s.Elements.Where(_ => random.Next(3) == 0).DefaultIfEmpty(s.Elements[random.Next(s.Elements.Count)]).ToImmutableSortedSet();
        return ($"delete element {t.Id} {s.Name} {{ {string.Join(", ", ports)} }}\n", "delete element",
            m.With(t.With(s with { Elements = s.Elements.Except(ports) })));
    }

    (string, string, SoakRuleset)? FlushSet(SoakRuleset m)
    {
        if (AnySet(m) is not { } p) return null;
        var (t, s) = p;
        return ($"flush set {t.Id} {s.Name}\n", "flush set", m.With(t.With(s with { Elements = [] })));
    }

    (string, string, SoakRuleset)? FlushChain(SoakRuleset m)
    {
        if (Pick(m.AllChains.Select(x => Tuple.Create(x.Table, x.Chain))) is not { } p) return null;
        var (t, c) = p;
        return ($"flush chain {t.Id} {c.Name}\n", "flush chain", m.With(t.With(c with { Rules = [] })));
    }

    /// <summary>`flush table` deletes the table's rules; chains and set elements stay.</summary>
    (string, string, SoakRuleset)? FlushTable(SoakRuleset m) =>
        Pick(m.Tables) is { } t
            ? ($"flush table {t.Id}\n", "flush table", m.With(t with { Chains = t.Chains.Select(c => c with { Rules = [] }).ToImmutableList() }))
            : null;

    /// <summary>A command the kernel refuses, given the model the batch has made so far.</summary>
    (string Text, string Word)? Failing(SoakRuleset m, IReadOnlyDictionary<int, long> handles)
    {
        switch (random.Next(5))
        {
            case 0 when Pick(m.AllChains.Select(x => Tuple.Create(x.Table, x.Chain))) is { } p:
                return ($"delete rule {p.Item1.Id} {p.Item2.Name} handle 999999\n", "delete rule (no such handle)");
            case 1 when Pick(m.Tables.SelectMany(t => t.Sets.Where(s => !s.Interval && s.Elements.Count > 0).Select(s => Tuple.Create(t, s)))) is { } p:
                return ($"create element {p.Item1.Id} {p.Item2.Name} {{ {p.Item2.Elements[0]} }}\n", "create element (exists)");
            case 2 when Pick(m.Tables.SelectMany(t => t.Sets.Where(s => s.Elements.Count < PoolSize).Select(s => Tuple.Create(t, s)))) is { } p:
                return ($"delete element {p.Item1.Id} {p.Item2.Name} {{ {Pool.First(x => !p.Item2.Elements.Contains(x))} }}\n", "delete element (absent)");
            case 3 when Pick(m.Tables.SelectMany(t => t.Sets.Where(s => Referenced(t, s)).Select(s => Tuple.Create(t, s)))) is { } p:
                return ($"delete set {p.Item1.Id} {p.Item2.Name}\n", "delete set (in use)");
            default:
                return Pick(m.Tables) is { } t ? ($"create table {t.Id}\n", "create table (exists)") : null;
        }
    }
}
