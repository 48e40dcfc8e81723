using System.Globalization;
using System.Text;

namespace Bpfilter.Daemon.Metrics;

/// <summary>The metric types of the Prometheus text format that bpfilterd uses.</summary>
public enum MetricType { Counter, Gauge, Histogram }

/// <summary>
/// Writes the Prometheus text exposition format, version 0.0.4: per metric family one HELP and one TYPE line,
/// then all of its samples together. Metric and label names are checked against the format's grammar, label
/// values and help text escaped (backslash, double quote in label values, line feed), and a series written
/// twice is refused: a mistake here throws rather than producing text a scraper rejects.
/// </summary>
public sealed class Exposition
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    readonly StringBuilder _text = new();
    readonly HashSet<string> _families = [];
    readonly HashSet<string> _series = [];
    string? _family;
    MetricType _type;

    /// <summary>Starts a metric family; the samples written next belong to it.</summary>
    public Exposition Family(string name, MetricType type, string help)
    {
        if (!IsMetricName(name)) throw new ArgumentException($"'{name}' is not a metric name");
        if (type == MetricType.Counter && !name.EndsWith("_total", StringComparison.Ordinal))
            throw new ArgumentException($"counter {name} must end in _total");
        if (!_families.Add(name)) throw new InvalidOperationException($"metric family {name} written twice");
        _family = name;
        _type = type;
        _text.Append("# HELP ").Append(name).Append(' ');
        foreach (char c in help)
            _text.Append(c switch { '\\' => "\\\\", '\n' => "\\n", _ => c.ToString() });
        _text.Append('\n');
        _text.Append("# TYPE ").Append(name).Append(' ').Append(type switch
        {
            MetricType.Counter => "counter",
            MetricType.Gauge => "gauge",
            _ => "histogram",
        }).Append('\n');
        return this;
    }

    /// <summary>A sample of the current counter or gauge family.</summary>
    public Exposition Sample(ulong value, params (string Name, string Value)[] labels) =>
        Write("", labels, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>A sample of the current counter or gauge family.</summary>
    public Exposition Sample(double value, params (string Name, string Value)[] labels) => Write("", labels, Format(value));

    /// <summary>
    /// One histogram of the current histogram family: <paramref name="buckets"/> are (upper bound, count of
    /// observations at most that bound), ascending and cumulative; the +Inf bucket is <paramref name="count"/>.
    /// </summary>
    public Exposition Histogram(IReadOnlyList<(double UpperBound, ulong Count)> buckets, double sum, ulong count,
        params (string Name, string Value)[] labels)
    {
        if (_type != MetricType.Histogram) throw new InvalidOperationException($"{_family} is not a histogram");
        double previousBound = double.NegativeInfinity;
        ulong previousCount = 0;
        foreach (var (le, n) in buckets)
        {
            if (!(le > previousBound) || n < previousCount || n > count || double.IsPositiveInfinity(le))
                throw new ArgumentException("histogram buckets must have ascending finite bounds and cumulative counts");
            previousBound = le;
            previousCount = n;
            Write("_bucket", [.. labels, ("le", Format(le))], n.ToString(CultureInfo.InvariantCulture));
        }
        Write("_bucket", [.. labels, ("le", "+Inf")], count.ToString(CultureInfo.InvariantCulture));
        Write("_sum", labels, Format(sum));
        return Write("_count", labels, count.ToString(CultureInfo.InvariantCulture));
    }

    Exposition Write(string suffix, (string Name, string Value)[] labels, string value)
    {
        if (_family == null) throw new InvalidOperationException("a sample needs a metric family first");
        if ((_type == MetricType.Histogram) != (suffix.Length > 0)) throw new InvalidOperationException($"{_family}: wrong sample kind for a {_type}");
        int start = _text.Length;
        _text.Append(_family).Append(suffix);
        if (labels.Length > 0)
        {
            _text.Append('{');
            var names = new HashSet<string>();
            for (int i = 0; i < labels.Length; i++)
            {
                var (name, v) = labels[i];
                if (!IsLabelName(name) || !names.Add(name))
                    throw new ArgumentException($"{_family}: '{name}' is not a label name or is repeated");
                if (i > 0) _text.Append(',');
                _text.Append(name).Append("=\"");
                foreach (char c in v)
                    _text.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
                _text.Append('"');
            }
            _text.Append('}');
        }
        if (!_series.Add(_text.ToString(start, _text.Length - start)))
            throw new InvalidOperationException($"series {_text.ToString(start, _text.Length - start)} written twice");
        _text.Append(' ').Append(value).Append('\n');
        return this;
    }

    /// <summary>A float as the format writes it: shortest round-trip form, +Inf, -Inf, NaN.</summary>
    public static string Format(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN"
            : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>[a-zA-Z_:][a-zA-Z0-9_:]*</summary>
    public static bool IsMetricName(string s) => IsName(s, colon: true);

    /// <summary>[a-zA-Z_][a-zA-Z0-9_]*, and not starting with __ (reserved).</summary>
    public static bool IsLabelName(string s) => IsName(s, colon: false) && !s.StartsWith("__", StringComparison.Ordinal);

    static bool IsName(string s, bool colon)
    {
        if (s.Length == 0) return false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (colon && c == ':') || (i > 0 && c is >= '0' and <= '9');
            if (!ok) return false;
        }
        return true;
    }

    public override string ToString() => _text.ToString();
}
