using Bpfilter.Backend.Codegen;
using Bpfilter.Backend.Ir;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// Issue 12: the layout of a classifier taken from the layout of one that has more rules after the same ones
/// (<see cref="ClassifierLayout.Extends"/>: a recompile after a grouped run took the run's last rules) is, field by field,
/// the layout the sweep gives: every value's class, the classes' numbers, vectors (summary words included) and absent
/// class, the trie fields' entries, and the rule values. Random rules over two 16-bit fields, an 8-bit one and a 32-bit
/// one (a trie, laid out again), some with more than 1,024 rules (folded words), cut by one rule, by many, and not at all.
/// </summary>
public class ClassifierCutTests
{
    static readonly ValueList<Field> FieldsRead = ValueList.Of<Field>(Fields.Ip.Protocol, Fields.Udp.Dport, Fields.Udp.Sport, Fields.Ip.Saddr);

    static ClassifierVerdict Random(Random random, int n)
    {
        var points = FieldsRead.Select(f => Enumerable.Range(0, random.Next(2, 40))
            .Select(_ => (ulong)random.NextInt64(1L << f.Bits)).Append(0UL).Append((1UL << f.Bits) - 1).ToArray()).ToList();
        var rules = new List<ClassifierRule>();
        for (var r = 0; r < n; r++)
        {
            var admits = FieldsRead.Select((f, d) => random.Next(6) switch
            {
                0 or 1 => (ValueList<Interval>?)null,
                2 when r % 7 == 0 => ValueList<Interval>.Empty,
                _ => Enumerable.Range(0, random.Next(1, 3)).Select(_ =>
                {
                    var a = points[d][random.Next(points[d].Length)];
                    var b = random.Next(3) == 0 ? a : points[d][random.Next(points[d].Length)];
                    return new Interval(Math.Min(a, b), Math.Max(a, b));
                }).ToValueList(),
            }).ToValueList();
            var statements = r % 3 == 0 ? ValueList<Statement>.Empty : ValueList.Of<Statement>(new CounterStatement((ulong)(100 + r)));
            rules.Add(new ClassifierRule(admits, statements, random.Next(2) == 0 ? Verdict.Accept : Verdict.Drop));
        }
        return new ClassifierVerdict(FieldsRead, rules.ToValueList());
    }

    static int Slot(ulong counter) => (int)(counter * 3 % 1000);

    [Theory]
    [InlineData(11, 300, 1)]
    [InlineData(12, 300, 16)]
    [InlineData(13, 1100, 1)] // past the folded words
    [InlineData(14, 1100, 40)]
    [InlineData(15, 1500, 300)]
    public void ACutLayoutIsTheSweepsLayout(int seed, int n, int cut)
    {
        var random = new Random(seed);
        var longer = new ClassifierLayout(Random(random, n), "t", c => Slot(c));
        var classifier = longer.Classifier with { Rules = longer.Classifier.Rules.Take(n - cut).ToValueList() };
        Assert.True(longer.Extends(classifier));
        var fresh = new ClassifierLayout(classifier, "t", c => Slot(c));
        var taken = new ClassifierLayout(classifier, "t", c => Slot(c), longer);
        Assert.True(taken.TakenFromEarlier);
        Assert.False(fresh.TakenFromEarlier);
        AssertSame(fresh, taken);
        // and the layout the sweep gives the shorter one is taken whole by an equal classifier
        var again = new ClassifierLayout(classifier with { Rules = classifier.Rules.ToValueList() }, "t", c => Slot(c), taken);
        Assert.All(again.Dimensions.Zip(taken.Dimensions), p => Assert.Same(p.Second, p.First));
        AssertSame(fresh, again);
    }

    [Fact]
    public void OnlyAClassifierWithTheSameFirstRulesFieldsAndWordsIsExtended()
    {
        var random = new Random(16);
        var longer = new ClassifierLayout(Random(random, 1100), "t", c => Slot(c));
        var rules = longer.Classifier.Rules;
        Assert.False(longer.Extends(longer.Classifier with { Rules = rules.Take(1000).ToValueList() })); // fewer words
        Assert.False(longer.Extends(longer.Classifier with { Rules = rules.Append(rules[0]).ToValueList() })); // more rules
        Assert.False(longer.Extends(longer.Classifier with { Rules = rules.Take(1050).Skip(1).Prepend(rules[2]).ToValueList() }));
        Assert.False(longer.Extends(longer.Classifier with { Fields = ValueList.Of<Field>(Fields.Ip.Protocol, Fields.Udp.Sport, Fields.Udp.Dport, Fields.Ip.Saddr) }));
        Assert.True(longer.Extends(longer.Classifier with { Rules = rules.Take(1050).ToValueList() }));
        Assert.Throws<ArgumentException>(() => new ClassifierLayout(longer.Classifier with { Rules = rules.Take(900).ToValueList() }, "t", c => Slot(c), longer));
    }

    static void AssertSame(ClassifierLayout want, ClassifierLayout got)
    {
        Assert.Equal(want.Words, got.Words);
        Assert.Equal(want.VerdictCodes, got.VerdictCodes);
        Assert.Equal(want.RuleValues.Select(Convert.ToHexString), got.RuleValues.Select(Convert.ToHexString));
        Assert.Equal(want.Dimensions.Count, got.Dimensions.Count);
        foreach (var (a, b) in want.Dimensions.Zip(got.Dimensions))
        {
            Assert.Equal((a.Field, a.Index, a.IsArray, a.Absent, a.ClassCount), (b.Field, b.Index, b.IsArray, b.Absent, b.ClassCount));
            Assert.Equal(a.ArrayClasses, b.ArrayClasses);
            Assert.Equal(a.ClassEntries.Select(e => (Convert.ToHexString(e.Key), e.Class)), b.ClassEntries.Select(e => (Convert.ToHexString(e.Key), e.Class)));
            for (var c = 0; c < a.ClassCount; c++)
                Assert.Equal(Convert.ToHexString(a.VectorValue(c, want.Words)), Convert.ToHexString(b.VectorValue(c, got.Words)));
        }
    }
}
