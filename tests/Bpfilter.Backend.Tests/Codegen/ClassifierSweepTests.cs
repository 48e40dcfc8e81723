using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The class arrays of a classifier's fields of at most 16 bits: the sweep over one sorted event array gives every value
/// the class, and every class the vector (less the rules without a matcher past the folded words, in the absent class's
/// match-anything vector alone there) and number, that the sweep over a sorted dictionary of per-point event lists
/// (each list ordered again, leaving before entering) gave before it: random rules with overlapping, adjacent, nested
/// and touching intervals, a rule leaving and entering at one point, rules without a matcher and rules admitting nothing.
/// </summary>
public class ClassifierSweepTests
{
    [Theory]
    [InlineData(1, 8)]
    [InlineData(2, 16)]
    [InlineData(3, 16)]
    [InlineData(4, 8)]
    [InlineData(5, 16)]
    public void ClassesAreThoseOfTheDictionarySweep(int seed, int bits)
    {
        var random = new Random(seed);
        Field field = bits == 8 ? Fields.Ip.Protocol : Fields.Udp.Dport;
        var size = 1UL << bits;
        for (var round = 0; round < 20; round++)
        {
            var rules = new List<ClassifierRule>();
            var n = random.Next(1, 1500);
            // few distinct points, so boundaries coincide often (one rule's end + 1 another's start, the same rule's)
            var points = Enumerable.Range(0, random.Next(1, 40)).Select(_ => (ulong)random.NextInt64((long)size)).Append(0UL).Append(size - 1).ToArray();
            for (var r = 0; r < n; r++)
            {
                ValueList<Interval>? admits = random.Next(8) switch
                {
                    0 => (ValueList<Interval>?)null,
                    1 => ValueList<Interval>.Empty,
                    _ => Enumerable.Range(0, random.Next(1, 4)).Select(_ =>
                    {
                        var a = points[random.Next(points.Length)];
                        var b = random.Next(3) == 0 ? a : points[random.Next(points.Length)];
                        return new Interval(Math.Min(a, b), Math.Max(a, b));
                    }).ToValueList(),
                };
                rules.Add(new ClassifierRule(ValueList.Of(admits), ValueList<Statement>.Empty, random.Next(2) == 0 ? Verdict.Accept : Verdict.Drop));
            }
            var layout = new ClassifierLayout(new ClassifierVerdict(ValueList.Of(field), rules.ToValueList()), "t", _ => 0);
            var dim = Assert.Single(layout.Dimensions);
            Assert.True(dim.IsArray);
            var (classes, vectors) = DictionarySweep(rules, bits, layout.Words);
            Assert.Equal(vectors.Count, dim.ClassCount);
            // the rules without a matcher past the folded words are the absent class's vector alone (the program ORs it
            // into every class's there); in the folded words every class holds them
            var any = vectors[dim.Absent];
            for (var c = 0; c < vectors.Count; c++)
                Assert.Equal(c == dim.Absent ? any : vectors[c].Select((v, w) => w < layout.FoldedWords ? v : v & ~any[w]).ToArray(), dim.RuleWords(c));
            Assert.Equal(classes, dim.ArrayClasses);
        }
    }

    /// <summary>The layout's sweep before issue 12's rewrite, with the class numbering it had (the absent class first).</summary>
    static (int[] Classes, List<ulong[]> Vectors) DictionarySweep(List<ClassifierRule> rules, int bits, int words)
    {
        var vectors = new List<ulong[]>();
        int ClassOf(ulong[] v)
        {
            var i = vectors.FindIndex(x => x.AsSpan().SequenceEqual(v));
            if (i >= 0) return i;
            vectors.Add((ulong[])v.Clone());
            return vectors.Count - 1;
        }
        void Set(ulong[] v, int r) => v[r / 64] |= 1UL << (r % 64);
        void Clear(ulong[] v, int r) => v[r / 64] &= ~(1UL << (r % 64));
        var any = new ulong[words];
        for (var r = 0; r < rules.Count; r++)
            if (rules[r].Admits[0] is null) Set(any, r);
        ClassOf(any);
        var events = new SortedDictionary<ulong, List<(int Rule, bool Enter)>>();
        void At(ulong x, int r, bool enter)
        {
            if (!events.TryGetValue(x, out var list)) events[x] = list = new();
            list.Add((r, enter));
        }
        var size = 1UL << bits;
        for (var r = 0; r < rules.Count; r++)
            if (rules[r].Admits[0] is { } admits)
                foreach (var iv in admits)
                {
                    At(iv.From, r, true);
                    if (iv.To + 1 < size) At(iv.To + 1, r, false);
                }
        if (!events.ContainsKey(0)) events[0] = new();
        var running = (ulong[])any.Clone();
        var bounds = events.Keys.ToList();
        var classes = new int[size];
        for (var b = 0; b < bounds.Count; b++)
        {
            foreach (var (r, enter) in events[bounds[b]].OrderBy(e => e.Enter))
                if (enter) Set(running, r); else Clear(running, r);
            var cls = ClassOf(running);
            var end = b + 1 < bounds.Count ? bounds[b + 1] : size;
            for (var x = bounds[b]; x < end; x++) classes[x] = cls;
        }
        return (classes, vectors);
    }
}
