using System.Text;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>A line-based unified diff (LCS), enough for nft outputs of a few hundred lines.</summary>
public static class UnifiedDiff
{
    public static string Create(string expected, string actual, string expectedLabel, string actualLabel, int context = 3)
    {
        var a = SplitLines(expected);
        var b = SplitLines(actual);
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (int i = a.Length - 1; i >= 0; i--)
            for (int j = b.Length - 1; j >= 0; j--)
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);

        // Edit script: (' ', line), ('-', line), ('+', line) with positions in a and b.
        var ops = new List<(char Op, string Text, int A, int B)>();
        {
            int i = 0, j = 0;
            while (i < a.Length || j < b.Length)
            {
                if (i < a.Length && j < b.Length && a[i] == b[j]) { ops.Add((' ', a[i], i, j)); i++; j++; }
                else if (i < a.Length && (j == b.Length || lcs[i + 1, j] >= lcs[i, j + 1])) { ops.Add(('-', a[i], i, j)); i++; }
                else { ops.Add(('+', b[j], i, j)); j++; }
            }
        }

        var sb = new StringBuilder();
        sb.Append("--- ").Append(expectedLabel).Append('\n').Append("+++ ").Append(actualLabel).Append('\n');
        int k = 0;
        while (k < ops.Count)
        {
            if (ops[k].Op == ' ') { k++; continue; }
            int start = Math.Max(0, k - context);
            int end = k;
            // Extend the hunk while changes are within 2*context lines of each other.
            while (true)
            {
                while (end < ops.Count && ops[end].Op != ' ') end++;
                int next = end;
                while (next < ops.Count && ops[next].Op == ' ' && next - end < 2 * context) next++;
                if (next < ops.Count && ops[next].Op != ' ') { end = next; continue; }
                end = Math.Min(ops.Count, end + context);
                break;
            }
            int aStart = ops[start].A, bStart = ops[start].B;
            int aLen = ops.Skip(start).Take(end - start).Count(o => o.Op != '+');
            int bLen = ops.Skip(start).Take(end - start).Count(o => o.Op != '-');
            sb.Append($"@@ -{aStart + 1},{aLen} +{bStart + 1},{bLen} @@\n");
            for (int x = start; x < end; x++) sb.Append(ops[x].Op).Append(ops[x].Text).Append('\n');
            k = end;
        }
        return sb.ToString();
    }

    static string[] SplitLines(string s)
    {
        if (s.Length == 0) return [];
        var lines = s.Split('\n');
        // A final newline ends the last line rather than starting an empty one; a missing one is shown.
        if (lines[^1].Length == 0) return lines[..^1];
        lines[^1] += " \\ no newline at end";
        return lines;
    }
}
