using Bpfilter.Daemon.Metrics;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>The text format writer: escaping, grammar checks, histograms, and its output read back by the strict parser.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ExpositionTests
{
    [Fact]
    public void LabelValuesAndHelpAreEscapedAndReadBackUnchanged()
    {
        const string odd = "a \\ back\"slash\nnew line, {braces}=, 'quotes' ü";
        var text = new Exposition()
            .Family("bpfilterd_test_total", MetricType.Counter, "help with \\ and\nline feed \"kept\"")
            .Sample(7UL, ("table", odd), ("chain", ""))
            .ToString();
        Assert.Equal(
            "# HELP bpfilterd_test_total help with \\\\ and\\nline feed \"kept\"\n" +
            "# TYPE bpfilterd_test_total counter\n" +
            "bpfilterd_test_total{table=\"a \\\\ back\\\"slash\\nnew line, {braces}=, 'quotes' ü\",chain=\"\"} 7\n", text);
        var f = ExpositionParser.Parse(text)["bpfilterd_test_total"];
        Assert.Equal("help with \\ and\nline feed \"kept\"", f.Help);
        Assert.Equal(odd, f.Samples.Single().Label("table"));
        Assert.Equal(7UL, f.Samples.Single().Integer);
    }

    [Fact]
    public void ValuesAreWrittenExactly()
    {
        var text = new Exposition()
            .Family("g", MetricType.Gauge, "h")
            .Sample(ulong.MaxValue, ("k", "max"))
            .Sample(0.000123, ("k", "small"))
            .Sample(double.PositiveInfinity, ("k", "inf"))
            .Sample(double.NaN, ("k", "nan"))
            .ToString();
        var s = ExpositionParser.Parse(text)["g"].Samples;
        Assert.Equal(ulong.MaxValue, s[0].Integer);
        Assert.Equal(0.000123, s[1].Value);
        Assert.Equal("+Inf", s[2].Raw);
        Assert.Equal("NaN", s[3].Raw);
    }

    [Fact]
    public void AHistogramHasCumulativeBucketsInfSumAndCount()
    {
        var text = new Exposition()
            .Family("bpfilterd_d_seconds", MetricType.Histogram, "h")
            .Histogram([(0.5, 1), (1, 3)], 2.25, 4)
            .ToString();
        Assert.Equal("""
            # HELP bpfilterd_d_seconds h
            # TYPE bpfilterd_d_seconds histogram
            bpfilterd_d_seconds_bucket{le="0.5"} 1
            bpfilterd_d_seconds_bucket{le="1"} 3
            bpfilterd_d_seconds_bucket{le="+Inf"} 4
            bpfilterd_d_seconds_sum 2.25
            bpfilterd_d_seconds_count 4

            """.ReplaceLineEndings("\n"), text);
        Assert.Equal(5, ExpositionParser.Parse(text)["bpfilterd_d_seconds"].Samples.Count);
    }

    [Fact]
    public void MistakesThrowInsteadOfWritingWhatAScraperRejects()
    {
        Assert.Throws<ArgumentException>(() => new Exposition().Family("1bad", MetricType.Gauge, "h"));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("bad-name", MetricType.Gauge, "h"));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("no_suffix", MetricType.Counter, "h"));
        Assert.Throws<InvalidOperationException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Family("g", MetricType.Gauge, "h"));
        Assert.Throws<InvalidOperationException>(() => new Exposition().Sample(1UL));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Sample(1UL, ("bad-label", "v")));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Sample(1UL, ("__reserved", "v")));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Sample(1UL, ("a", "1"), ("a", "2")));
        Assert.Throws<InvalidOperationException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Sample(1UL, ("a", "1")).Sample(2UL, ("a", "1")));
        Assert.Throws<InvalidOperationException>(() => new Exposition().Family("h", MetricType.Histogram, "h").Sample(1UL));
        Assert.Throws<InvalidOperationException>(() => new Exposition().Family("g", MetricType.Gauge, "h").Histogram([], 0, 0));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("h", MetricType.Histogram, "h").Histogram([(1, 2), (0.5, 2)], 0, 2));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("h", MetricType.Histogram, "h").Histogram([(0.5, 2), (1, 1)], 0, 2));
        Assert.Throws<ArgumentException>(() => new Exposition().Family("h", MetricType.Histogram, "h").Histogram([(0.5, 3)], 0, 2));
    }

    [Fact]
    public void TheStrictParserRejectsBrokenText()
    {
        string[] broken =
        [
            "# TYPE a gauge\na 1\n", // no HELP
            "# HELP a h\n# TYPE a gauge\na 1", // no final line feed
            "# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n", // repeated series
            "# HELP a h\n# TYPE a gauge\na{x=\"\\t\"} 1\n", // unknown escape
            "# HELP a h\n# TYPE a gauge\nb 1\n", // sample of another family
            "# HELP a_total h\n# TYPE a_total counter\na_total -1\n", // negative counter
            "# HELP a h\n# TYPE a gauge\na one\n", // not a number
            "# HELP a h\n# TYPE a gauge\n\na 1\n", // blank line
            "# HELP a h\n# TYPE a histogram\na_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\na_sum 0\na_count 1\n", // not cumulative
            "# HELP a h\n# TYPE a histogram\na_bucket{le=\"+Inf\"} 2\na_sum 0\na_count 1\n", // +Inf != count
        ];
        foreach (var text in broken) Assert.Throws<FormatException>(() => ExpositionParser.Parse(text));
    }
}
