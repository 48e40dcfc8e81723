using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Enforcement;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Attach;

/// <summary>
/// <see cref="UnseenRunAppend"/> against the full path, over random appends (fresh `ip saddr . udp dport` values, repeated
/// ones, `ip6 saddr` rules, port-only rules, other verdicts, rules without counter, jumps, a rule that ends the chain),
/// inserts, deletes and replaces of one inet input chain, committed one after the other, for both of its programs
/// (ipv4 and ipv6): whenever it keeps a program, a full compile of the new rules with the running program's counter
/// layout gives that program again (instructions, counter slots, maps and their contents, digest), and it keeps each
/// program for appends to the other family's run.
/// </summary>
public class UnseenRunAppendTests
{
    static readonly NetfilterHook Inet = new(NfFamily.Inet, NfHookPoint.Input, 0);

    /// <summary>The unit of one program of the inet chain, as AttachUnit.Group makes it.</summary>
    static NetfilterHook HookOf(bool ipv6) => Inet with { Family = ipv6 ? NfFamily.Ipv6 : NfFamily.Ipv4 };

    static Ruleset Rules(List<Rule> rules, bool ipv6) => new(
        ValueList.Of(new BaseChain("t/in", HookOf(ipv6), 0, Verdict.Accept, rules.ToValueList())),
        ValueList.Of(new Chain("t/r", ValueList.Of(Counted(1, Verdict.Accept, Matcher.Eq(Fields.Tcp.Dport, U16(22)))))),
        ValueList<Backend.Ir.Set>.Empty);

    static CompiledProgram Compile(Ruleset rules, bool ipv6, CompiledProgram? running) =>
        ProgramCompiler.Compile(rules, rules.BaseChains, ipv6, counters: running is null ? null : CounterLayout.Of(running));

    /// <summary>Everything of a compilation the enforcer keeps, loads or pins by.</summary>
    static string Describe(CompiledProgram p) => string.Join("\n",
        new[] { p.Disassembly, $"used {p.CounterSlotsUsed}", $"digest {LoadedProgram.Digest(p)}", $"segments {p.Segments.Length}" }
            .Concat(p.CounterSlots.OrderBy(kv => kv.Key).Select(kv => $"slot {kv.Key}={kv.Value}"))
            .Concat(p.SetLayouts.Keys.Order(StringComparer.Ordinal).Select(k => $"set {k}"))
            .Concat(p.Maps.Select(m => $"map {m.Name} {m.Type} {m.KeySize} {m.ValueSize} {m.MaxEntries} "
                + string.Join(",", m.Entries.Select(e => Convert.ToHexString(e.Key) + "=" + Convert.ToHexString(e.Value)).Order()))));

    [Theory]
    [InlineData(3, false)]
    [InlineData(12, true)]
    public void AProgramKeptForAnAppendToARunItHasNoCodeForIsWhatAFullCompileGives(int seed, bool lifted)
    {
        var rng = new Random(seed);
        ulong next = 100;
        // nft's inet `ip saddr A udp dport P` lifts with its protocol dependencies (lifted) or without them
        Matcher[] Head(bool v6) => lifted
            ? [Matcher.Eq(Fields.NfProto, U8(v6 ? 10UL : 2UL)), Matcher.Eq(Fields.L4Proto, U8(17))]
            : [];
        Value Addr(int a, bool v6) => v6 ? V6($"2001:db8::{a:x}") : V4($"10.0.{a >> 8}.{a & 255}");
        Rule Tuple(int a, bool v6, Verdict? v = null, bool counted = true)
        {
            Matcher[] m = [.. Head(v6), Matcher.Eq(v6 ? Fields.Ip6.Saddr : Fields.Ip.Saddr, Addr(a, v6)), Matcher.Eq(Fields.Udp.Dport, U16(7))];
            return counted ? Counted(next++, v ?? Verdict.Drop, m) : new Rule(m.ToValueList(), v ?? Verdict.Drop);
        }
        var v6Run = rng.Next(2) == 0; // which family's run the chain ends with
        var rules = Enumerable.Range(0, 20).Select(_ => Tuple(rng.Next(4000), v6Run)).ToList();
        var running = new[] { Compile(Rules(rules, false), false, null), Compile(Rules(rules, true), true, null) };
        var runs = new[] { new ChainFolds<TrailingRun>(), new ChainFolds<TrailingRun>() };
        var kept = new[] { 0, 0 };
        var kinds = new Dictionary<string, int>();
        var undo = false;
        for (var step = 0; step < 150; step++)
        {
            var now = rules.ToList();
            var kind = undo ? "delete last" : rng.Next(22) switch
            {
                < 8 => "append",
                8 => "append repeated value",
                9 => "append other family",
                10 => "append port only",
                11 => "append jump",
                12 => "append ends chain",
                13 => "append accept",
                14 => "append without counter",
                15 or 16 => "insert",
                17 or 18 => "delete",
                19 => "switch family",
                _ => "replace",
            };
            undo = false;
            switch (kind)
            {
                case "append": now.Add(Tuple(rng.Next(4000), v6Run)); break;
                case "append repeated value": now.Add(Counted(next++, Verdict.Drop, now[^1].Matchers.ToArray())); break;
                case "append other family": now.Add(Tuple(rng.Next(4000), !v6Run)); undo = true; break;
                case "append port only": now.Add(Counted(next++, Verdict.Drop, Matcher.Eq(Fields.Udp.Dport, U16((ulong)rng.Next(1000))))); undo = true; break;
                case "append jump": now.Add(Tuple(rng.Next(4000), v6Run, Verdict.Jump("t/r"))); undo = true; break;
                case "append ends chain": now.Add(Counted(next++, Verdict.Drop)); undo = true; break;
                case "append accept": now.Add(Tuple(rng.Next(4000), v6Run, Verdict.Accept)); break;
                case "append without counter": now.Add(Tuple(rng.Next(4000), v6Run, counted: false)); break;
                case "insert": now.Insert(rng.Next(now.Count), Tuple(rng.Next(4000), v6Run)); break;
                case "delete" or "delete last": now.RemoveAt(kind == "delete" ? rng.Next(now.Count) : now.Count - 1); break;
                case "switch family": v6Run = !v6Run; now.AddRange(Enumerable.Range(0, 16).Select(_ => Tuple(rng.Next(4000), v6Run))); break;
                default: now[rng.Next(now.Count)] = Tuple(rng.Next(4000), v6Run); break;
            }
            for (var p = 0; p < 2; p++)
            {
                var ipv6 = p == 1;
                var (before, after) = (Rules(rules, ipv6), Rules(now, ipv6));
                var was = UnitSource.Of(before, before.BaseChains);
                var source = UnitSource.Of(after, after.BaseChains);
                var keeps = UnseenRunAppend.Keeps(HookOf(ipv6), ipv6, was, source, runs[p]);
                Assert.Equal(keeps, UnseenRunAppend.Keeps(HookOf(ipv6), ipv6, was, source)); // the kept runs find what a fold of the chain finds
                var full = Compile(after, ipv6, running[p]);
                if (keeps)
                {
                    Assert.Equal(Describe(full), Describe(running[p]));
                    kept[p]++;
                    kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
                }
                else running[p] = full;
            }
            rules = now;
        }
        // appends to an ip run keep the ipv6 program, to an ip6 run the ipv4 program; the accept and counter-less ones too
        Assert.True(kept[0] > 5 && kept[1] > 5, $"kept ipv4 {kept[0]}, ipv6 {kept[1]}");
        Assert.True(kinds.GetValueOrDefault("append") > 10, string.Join(", ", kinds));
        foreach (var never in new[] { "append repeated value", "append port only", "append jump", "append ends chain", "insert", "delete", "replace" })
            Assert.False(kinds.ContainsKey(never), $"{never} kept a program");
    }
}
