using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>
/// Classifies a run of consecutive heterogeneous 5-tuple rules as one <see cref="ClassifierVerdict"/>
/// (issue 12, second pass): every rule of the run matches only with ==, !=, &lt;, &gt;, ranges or
/// prefixes on IPv4 header fields, `meta l4proto` and tcp/udp header fields (at most 32 bits,
/// byte-aligned), has no statement but one counter, and ends in accept, drop, goto or return
/// (verdicts after which nothing of the run runs: jump would come back to the next rule of the run).
/// The code generator reads each field once and finds the first rule admitting every value by ANDing
/// per-field bit vectors of rules (see <c>Codegen/ClassifierLayout</c>); first-match order and
/// per-rule counters are kept. A tcp/udp field implies `meta l4proto tcp/udp`: the ports of both
/// protocols are one dimension (the same bytes of the transport header) and the protocol becomes a
/// constraint on `meta l4proto`. A packet lacking a field's header is admitted only by rules without a
/// matcher on that field (also for !=), as nf_tables breaks.
/// A run of at most <see cref="MaxRules"/> rules is one classifier; a longer one is cut into classifiers
/// of <see cref="LongRunChunk"/> rules (memory grows with rules × distinct values per classifier, so
/// smaller chunks keep it linear in the run's length, at one round of lookups per chunk). Runs shorter
/// than <see cref="MinRun"/> stay rules.
/// </summary>
public sealed class Classification(int minRun = Classification.DefaultMinRun, int maxRules = Classification.DefaultMaxRules,
    int longRunChunk = Classification.DefaultLongRunChunk) : ILoweringPass
{
    /// <summary>Below this a linear run is as fast: see bench/README.md.</summary>
    public const int DefaultMinRun = 16;

    /// <summary>Four summary words of 64 bits, a bit per word of 64 rules: 16,384 rules per classifier.</summary>
    public const int DefaultMaxRules = 4 * 64 * 64;

    /// <summary>Classifier size for runs longer than <see cref="MaxRules"/>: 100,000 rules take 133 MiB of tables (bench/README.md).</summary>
    public const int DefaultLongRunChunk = 4096;

    /// <summary>Dimensions per classifier: each keeps a vector pointer in a stack slot.</summary>
    public const int MaxFields = 8;

    public string Name => "classification";

    public int MinRun { get; } = minRun >= 2 ? minRun : throw new ArgumentOutOfRangeException(nameof(minRun));

    public int MaxRules { get; } = maxRules is >= 2 and <= DefaultMaxRules ? maxRules : throw new ArgumentOutOfRangeException(nameof(maxRules));

    public int LongRunChunk { get; } = longRunChunk >= 2 ? Math.Min(longRunChunk, maxRules) : throw new ArgumentOutOfRangeException(nameof(longRunChunk));

    /// <summary>Whether 32-bit address fields are read as two 16-bit halves where the rules allow (<see cref="ClassifierFieldSplit"/>).</summary>
    public bool SplitWideFields { get; init; } = true;

    public Ruleset Run(Ruleset ruleset) => ChainRewrite.Apply(ruleset, (chain, rules) => Classify(chain, rules));

    /// <summary>A rule's admitted intervals per field (normalized dimension fields), or null when it cannot be classified.</summary>
    public static Dictionary<Field, List<Interval>>? AdmitsOf(Rule rule)
    {
        if (rule.Matchers.IsEmpty || rule.Verdict is not (AcceptVerdict or DropVerdict or GotoVerdict or ReturnVerdict)) return null;
        if (rule.Statements.Count > 1 || rule.Statements.Any(s => s is not CounterStatement)) return null;
        var admits = new Dictionary<Field, List<Interval>>();
        void Constrain(Field f, List<Interval> allowed) =>
            admits[f] = admits.TryGetValue(f, out var had) ? Intersect(had, allowed) : allowed;
        foreach (var m in rule.Matchers)
        {
            if (m.Key.IsConcatenation) return null;
            var (dim, l4) = DimensionOf(m.Key.Fields[0]);
            if (dim is null) return null;
            var allowed = Allowed(m.Operator, dim.Bits);
            if (allowed is null) return null;
            if (l4 is { } p) Constrain(Fields.L4Proto, [new Interval(p, p)]);
            Constrain(dim, allowed);
        }
        return admits;
    }

    /// <summary>The dimension a field is read as, and the transport protocol it implies (tcp 6, udp 17).</summary>
    private static (Field? Dim, ulong? L4) DimensionOf(Field f) => f switch
    {
        MetaField { Key: MetaKey.L4Proto } => (f, null),
        PayloadField { Protocol: HeaderProtocol.Ip } p when Aligned(p) => (p, null),
        PayloadField { Protocol: HeaderProtocol.Tcp or HeaderProtocol.Udp } p when Aligned(p) =>
            (PayloadField.Raw(PayloadBase.Transport, p.OffsetBits, p.LengthBits) with { FastLoad = p.FastLoad },
                p.Protocol == HeaderProtocol.Tcp ? 6UL : 17UL),
        _ => (null, null),
    };

    private static bool Aligned(PayloadField p) => p.OffsetBits % 8 == 0 && p.LengthBits % 8 == 0 && p.LengthBits <= 32;

    /// <summary>The values an operator admits, as sorted disjoint intervals (null: not an interval union, e.g. a non-prefix mask).</summary>
    private static List<Interval>? Allowed(Operator op, int bits)
    {
        var max = bits == 64 ? ulong.MaxValue : (1UL << bits) - 1;
        List<Interval> Not(ulong from, ulong to)
        {
            var rest = new List<Interval>();
            if (from > 0) rest.Add(new Interval(0, from - 1));
            if (to < max) rest.Add(new Interval(to + 1, max));
            return rest;
        }
        switch (op)
        {
            case Compare c:
                var v = c.Value.ToUInt64();
                return c.Op switch
                {
                    CompareOp.Eq => [new Interval(v, v)],
                    CompareOp.Ne => Not(v, v),
                    CompareOp.Lt => v == 0 ? [] : [new Interval(0, v - 1)],
                    CompareOp.Le => [new Interval(0, v)],
                    CompareOp.Gt => v == max ? [] : [new Interval(v + 1, max)],
                    _ => [new Interval(v, max)],
                };
            case InRange r:
                var (from, to) = (r.From.ToUInt64(), r.To.ToUInt64());
                if (from > to) return r.Negated ? [new Interval(0, max)] : [];
                return r.Negated ? Not(from, to) : [new Interval(from, to)];
            case Masked k when k.PrefixLength is { } len:
                var host = len >= bits ? 0UL : max >> len;
                var start = k.Value.ToUInt64() & ~host & max;
                if (start != k.Value.ToUInt64()) return []; // value bits outside the mask: never equal (and != always)
                return k.Negated ? Not(start, start | host) : [new Interval(start, start | host)];
            default:
                return null;
        }
    }

    private static List<Interval> Intersect(List<Interval> a, List<Interval> b)
    {
        var result = new List<Interval>();
        foreach (var x in a)
            foreach (var y in b)
            {
                var from = Math.Max(x.From, y.From);
                var to = Math.Min(x.To, y.To);
                if (from <= to) result.Add(new Interval(from, to));
            }
        result.Sort((p, q) => p.From.CompareTo(q.From));
        return result;
    }

    private (ValueList<Rule> Rules, IReadOnlyList<ulong>? Idle) Classify(string chain, ValueList<Rule> rules)
    {
        var output = new List<Rule>();
        var changed = false;
        var all = rules.Select(AdmitsOf).ToArray();
        var longRunEnd = -1; // a run past MaxRules is cut in LongRunChunk up to its end, its last piece too
        var i = 0;
        while (i < rules.Count)
        {
            var run = new List<(Rule Rule, Dictionary<Field, List<Interval>> Admits)>();
            var dims = new List<Field>();
            for (var j = i; j < rules.Count; j++)
            {
                var admits = all[j];
                if (admits is null) break;
                var more = admits.Keys.Where(f => !dims.Contains(f)).ToList();
                if (dims.Count + more.Count > MaxFields) break;
                dims.AddRange(more);
                run.Add((rules[j], admits));
            }
            if (run.Count < MinRun)
            {
                output.Add(rules[i++]);
                continue;
            }
            if (run.Count > MaxRules) longRunEnd = i + run.Count;
            if (i < longRunEnd && run.Count > LongRunChunk)
            {
                run.RemoveRange(LongRunChunk, run.Count - LongRunChunk); // the rest starts the next classifier
                dims.RemoveAll(d => !run.Any(r => r.Admits.ContainsKey(d)));
            }
            var (fields, perRule) = SplitWideFields
                ? ClassifierFieldSplit.Split(dims, run.Select(r => r.Admits).ToList(), MaxFields)
                : (dims, run.Select(r => dims.Select(d => r.Admits.GetValueOrDefault(d)).ToList()).ToList());
            var classified = run.Select((r, k) => new ClassifierRule(
                perRule[k].Select(a => a?.ToValueList()).ToValueList(), r.Rule.Statements, r.Rule.Verdict) { Origin = r.Rule.Origin }).ToValueList();
            output.Add(new Rule(ValueList<Matcher>.Empty, new ClassifierVerdict(fields.ToValueList(), classified) { Dimensions = dims.ToValueList() })
            {
                Origin = $"{rules[i].Origin ?? $"chain {chain}: rule '{rules[i]}'"} (classified with the next {run.Count - 1} rules)",
            });
            changed = true;
            i += run.Count;
        }
        return changed ? (output.ToValueList(), []) : (rules, null);
    }
}
