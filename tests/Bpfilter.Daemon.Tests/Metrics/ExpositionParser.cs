using System.Globalization;
using System.Text;

namespace Bpfilter.Daemon.Tests.Metrics;

/// <summary>One sample: its full name (with a histogram's _bucket/_sum/_count), labels in order, and value as written.</summary>
internal sealed record MetricSample(string Name, IReadOnlyList<KeyValuePair<string, string>> Labels, string Raw)
{
    public double Value => Raw switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.Parse(Raw, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    /// <summary>The value as an exact unsigned integer (counters of packets and bytes are written as such).</summary>
    public ulong Integer => ulong.Parse(Raw, NumberStyles.None, CultureInfo.InvariantCulture);

    public string Label(string name) => Labels.Single(l => l.Key == name).Value;
}

/// <summary>A metric family: HELP text (unescaped), TYPE, and its samples in order.</summary>
internal sealed record MetricFamily(string Name, string Type, string Help, List<MetricSample> Samples);

/// <summary>
/// A strict reader of the Prometheus text exposition format 0.0.4 as a scraper applies it, and stricter
/// where bpfilterd's output should be: every family has exactly one HELP then one TYPE line before its
/// samples, its samples are contiguous, names and label names follow the grammar, label values use only the
/// three escapes, no series repeats, counters are not negative, histograms have ascending le buckets with
/// cumulative counts, a +Inf bucket equal to _count, and a _sum; the text ends with a line feed and has no
/// blank lines or other comments. Any violation throws <see cref="FormatException"/> naming the line.
/// </summary>
internal static class ExpositionParser
{
    public static Dictionary<string, MetricFamily> Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n')) throw new FormatException("the exposition does not end with a line feed");
        var families = new Dictionary<string, MetricFamily>();
        var series = new HashSet<string>();
        MetricFamily? current = null;
        string? pendingHelp = null, pendingHelpName = null;
        var lines = text.Length == 0 ? [] : text[..^1].Split('\n');
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n];
            string Where() => $"line {n + 1}: '{line}'";
            if (line.Length == 0) throw new FormatException($"blank {Where()}");
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                var rest = line["# HELP ".Length..];
                int sp = rest.IndexOf(' ');
                if (sp <= 0) throw new FormatException($"HELP without text, {Where()}");
                pendingHelpName = rest[..sp];
                if (!IsMetricName(pendingHelpName) || families.ContainsKey(pendingHelpName) || pendingHelp != null)
                    throw new FormatException($"bad or repeated HELP, {Where()}");
                pendingHelp = UnescapeHelp(rest[(sp + 1)..], Where);
                continue;
            }
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line["# TYPE ".Length..].Split(' ');
                if (parts.Length != 2 || parts[0] != pendingHelpName || pendingHelp == null)
                    throw new FormatException($"TYPE must follow the HELP of the same family, {Where()}");
                if (parts[1] is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                    throw new FormatException($"unknown type, {Where()}");
                current = new MetricFamily(parts[0], parts[1], pendingHelp, []);
                families.Add(current.Name, current);
                pendingHelp = pendingHelpName = null;
                continue;
            }
            if (line.StartsWith('#')) throw new FormatException($"unexpected comment, {Where()}");
            if (current == null || pendingHelp != null) throw new FormatException($"sample outside a family, {Where()}");
            var sample = ParseSample(line, Where);
            if (!BelongsTo(sample.Name, current)) throw new FormatException($"sample of another family than {current.Name} (families must be contiguous), {Where()}");
            var key = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
            if (!series.Add(key)) throw new FormatException($"series repeated, {Where()}");
            if (current.Type == "counter" && !(sample.Value >= 0)) throw new FormatException($"negative counter, {Where()}");
            current.Samples.Add(sample);
        }
        if (pendingHelp != null) throw new FormatException($"HELP of {pendingHelpName} without TYPE");
        foreach (var f in families.Values.Where(f => f.Type == "histogram")) CheckHistogram(f);
        return families;
    }

    static bool BelongsTo(string sample, MetricFamily f) => f.Type switch
    {
        "histogram" => sample == f.Name + "_bucket" || sample == f.Name + "_sum" || sample == f.Name + "_count",
        "summary" => sample == f.Name || sample == f.Name + "_sum" || sample == f.Name + "_count",
        _ => sample == f.Name,
    };

    static void CheckHistogram(MetricFamily f)
    {
        foreach (var g in f.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").Select(l => $"{l.Key}={l.Value}"))))
        {
            var buckets = g.Where(s => s.Name.EndsWith("_bucket", StringComparison.Ordinal)).ToList();
            if (buckets.Count == 0 || buckets.Any(b => !b.Labels.Any(l => l.Key == "le")))
                throw new FormatException($"{f.Name}: buckets need le labels");
            double bound = double.NegativeInfinity, count = 0;
            foreach (var b in buckets)
            {
                var le = new MetricSample("", [], b.Label("le")).Value;
                if (!(le > bound) || b.Value < count) throw new FormatException($"{f.Name}: buckets not ascending or not cumulative");
                bound = le;
                count = b.Value;
            }
            if (!double.IsPositiveInfinity(bound)) throw new FormatException($"{f.Name}: no +Inf bucket");
            var total = g.SingleOrDefault(s => s.Name == f.Name + "_count") ?? throw new FormatException($"{f.Name}: no _count");
            if (total.Value != count) throw new FormatException($"{f.Name}: +Inf bucket {count} != _count {total.Value}");
            if (g.SingleOrDefault(s => s.Name == f.Name + "_sum") == null) throw new FormatException($"{f.Name}: no _sum");
        }
    }

    static MetricSample ParseSample(string line, Func<string> where)
    {
        int i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ') i++;
        var name = line[..i];
        if (!IsMetricName(name)) throw new FormatException($"bad metric name, {where()}");
        var labels = new List<KeyValuePair<string, string>>();
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                if (i < line.Length && line[i] == '}') { i++; break; }
                int start = i;
                while (i < line.Length && line[i] != '=') i++;
                var label = line[start..i];
                if (!IsLabelName(label) || labels.Any(l => l.Key == label)) throw new FormatException($"bad or repeated label name '{label}', {where()}");
                if (i + 1 >= line.Length || line[i + 1] != '"') throw new FormatException($"label value must be quoted, {where()}");
                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length) throw new FormatException($"unterminated label value, {where()}");
                    char c = line[i++];
                    if (c == '"') break;
                    if (c == '\\')
                    {
                        if (i >= line.Length) throw new FormatException($"dangling escape, {where()}");
                        value.Append(line[i++] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            var e => throw new FormatException($"unknown escape \\{e}, {where()}"),
                        });
                    }
                    else value.Append(c);
                }
                labels.Add(new(label, value.ToString()));
                if (i < line.Length && line[i] == ',') i++;
                else if (i >= line.Length || line[i] != '}') throw new FormatException($"expected , or }} after a label, {where()}");
            }
        }
        if (i >= line.Length || line[i] != ' ') throw new FormatException($"expected one space before the value, {where()}");
        var rest = line[(i + 1)..].Split(' ');
        if (rest.Length is < 1 or > 2 || rest[0].Length == 0) throw new FormatException($"expected a value and an optional timestamp, {where()}");
        var raw = rest[0];
        if (raw is not ("+Inf" or "-Inf" or "NaN") && !double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            throw new FormatException($"bad value, {where()}");
        if (rest.Length == 2 && !long.TryParse(rest[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            throw new FormatException($"bad timestamp, {where()}");
        return new MetricSample(name, labels, raw);
    }

    static string UnescapeHelp(string s, Func<string> where)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\') { sb.Append(s[i]); continue; }
            if (++i >= s.Length) throw new FormatException($"dangling escape in HELP, {where()}");
            sb.Append(s[i] switch { '\\' => '\\', 'n' => '\n', var e => throw new FormatException($"unknown escape \\{e} in HELP, {where()}") });
        }
        return sb.ToString();
    }

    static bool IsMetricName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] is '_' or ':') && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':');

    static bool IsLabelName(string s) =>
        s.Length > 0 && (char.IsAsciiLetter(s[0]) || s[0] == '_') && s.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') && !s.StartsWith("__");
}
