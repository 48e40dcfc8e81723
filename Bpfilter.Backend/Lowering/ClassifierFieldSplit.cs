using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Lowering;

/// <summary>
/// A 32-bit network-header field (ip saddr, ip daddr) of a classifier read as two 16-bit fields, its high
/// and low halves, when every rule of the run admits a product of an interval of each half (a prefix, an
/// exact value, a range inside one /16 or aligned to /16 boundaries): a value is then admitted exactly
/// when both halves are. Each half is a class array indexed by value (an inlined array lookup) instead
/// of an LPM trie walk, which costs tens of ns per field and packet (bench/README.md). Rules without a
/// matcher on the field have none on either half, so a packet lacking the header is admitted by the
/// same rules. A field whose rules admit anything else (`!=`, a range across /16 boundaries) stays whole.
/// </summary>
internal static class ClassifierFieldSplit
{
    private const ulong HalfMax = 0xffff;

    /// <summary>The dimensions after splitting (at most <paramref name="maxFields"/>), each with its rules' intervals.</summary>
    public static (List<Field> Fields, List<List<List<Interval>?>> Admits) Split(IReadOnlyList<Field> dims,
        IReadOnlyList<Dictionary<Field, List<Interval>>> rules, int maxFields)
    {
        var fields = new List<Field>();
        var admits = rules.Select(_ => new List<List<Interval>?>()).ToList();
        var count = dims.Count;
        foreach (var d in dims)
        {
            var halves = count < maxFields && HalvesOf(d) is { } hl && rules.All(r => !r.TryGetValue(d, out var a) || IsProduct(a))
                ? hl : ((PayloadField Hi, PayloadField Lo)?)null;
            if (halves is not { } h)
            {
                fields.Add(d);
                for (var r = 0; r < rules.Count; r++) admits[r].Add(rules[r].TryGetValue(d, out var a) ? a : null);
                continue;
            }
            count++;
            fields.Add(h.Hi);
            fields.Add(h.Lo);
            for (var r = 0; r < rules.Count; r++)
            {
                if (!rules[r].TryGetValue(d, out var a))
                {
                    admits[r].Add(null);
                    admits[r].Add(null);
                    continue;
                }
                var (hi, lo) = a.Count == 0 ? ([], []) : Halves(a[0]);
                admits[r].Add(hi);
                admits[r].Add(lo);
            }
        }
        return (fields, admits);
    }

    /// <summary>The fields a 32-bit network-header field is read as when split, or null when it is never split.</summary>
    internal static (PayloadField Hi, PayloadField Lo)? HalvesOf(Field d) =>
        d is PayloadField { Base: PayloadBase.Network, LengthBits: 32, FastLoad: null } p && p.OffsetBits % 8 == 0
            ? (new PayloadField(p.Protocol, p.Base, p.OffsetBits, 16), new PayloadField(p.Protocol, p.Base, p.OffsetBits + 16, 16))
            : null;

    /// <summary>No value (never matches) or one interval that is a product of a high-half and a low-half interval.</summary>
    internal static bool IsProduct(List<Interval> a) =>
        a.Count == 0 || a.Count == 1 && (a[0].From >> 16 == a[0].To >> 16 || (a[0].From & HalfMax) == 0 && (a[0].To & HalfMax) == HalfMax);

    internal static (List<Interval> Hi, List<Interval> Lo) Halves(Interval i) =>
        i.From >> 16 == i.To >> 16
            ? ([new Interval(i.From >> 16, i.From >> 16)], [new Interval(i.From & HalfMax, i.To & HalfMax)])
            : ([new Interval(i.From >> 16, i.To >> 16)], [new Interval(0, HalfMax)]);
}
