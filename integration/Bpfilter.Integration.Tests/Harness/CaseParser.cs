using System.Text;

namespace Bpfilter.Integration.Tests.Harness;

/// <summary>
/// Parses the case format described in integration/README.md: `nft ARGS` steps (shell-like quoting,
/// no shell), `! nft ARGS` for steps that must fail, `<<WORD` heredocs fed to nft's stdin, and
/// `@daemon-differs` blocks for intended differences.
/// </summary>
public static class CaseParser
{
    public static IReadOnlyList<CaseStep> Parse(string text, string source)
    {
        var lines = text.Replace("\r\n", "\n").Split('\n');
        var steps = new List<CaseStep>();
        DaemonBuilder? daemon = null;
        int i = 0;

        void FlushDaemon()
        {
            if (daemon == null) return;
            var last = steps[^1];
            steps[^1] = last with { Daemon = daemon.Build() };
            daemon = null;
        }

        while (i < lines.Length)
        {
            int lineNo = i + 1;
            var line = lines[i++].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            Exception Fail(string why) => new FormatException($"{source}:{lineNo}: {why}");

            if (line.StartsWith('@'))
            {
                var words = Tokenize(line, () => Fail("unterminated quote"));
                switch (words[0])
                {
                    case "@daemon-differs":
                        if (steps.Count == 0) throw Fail("@daemon-differs before any step");
                        if (steps[^1].Daemon != null || daemon != null) throw Fail("second @daemon-differs for one step");
                        if (words.Count < 2) throw Fail("@daemon-differs needs a reason");
                        daemon = new DaemonBuilder(string.Join(' ', words.Skip(1)));
                        break;
                    case "@exit":
                        if (daemon == null) throw Fail("@exit outside a @daemon-differs block");
                        if (words.Count != 2 || !int.TryParse(words[1], out daemon.Exit)) throw Fail("@exit N");
                        break;
                    case "@stdout":
                    case "@stderr":
                        if (daemon == null) throw Fail($"{words[0]} outside a @daemon-differs block");
                        if (words.Count != 2 || !words[1].StartsWith("<<")) throw Fail($"{words[0]} <<WORD");
                        var body = ReadHeredoc(lines, ref i, HeredocWord(words[1]), () => Fail("unterminated heredoc"));
                        if (words[0] == "@stdout") daemon.Stdout = body; else daemon.Stderr = body;
                        break;
                    default:
                        throw Fail($"unknown directive {words[0]}");
                }
                continue;
            }

            FlushDaemon();
            bool? expectFailure = false;
            if (line.StartsWith("! "))
            {
                expectFailure = true;
                line = line[2..].TrimStart();
            }
            else if (line.StartsWith("? "))
            {
                expectFailure = null; // the kernel's outcome depends on its configuration
                line = line[2..].TrimStart();
            }
            var tokens = Tokenize(line, () => Fail("unterminated quote"));
            if (tokens.Count == 0 || tokens[0] != "nft") throw Fail($"a step starts with `nft` or `! nft`, not `{line}`");
            tokens.RemoveAt(0);
            string? stdin = null;
            if (tokens.Count > 0 && tokens[^1].StartsWith("<<"))
            {
                var word = HeredocWord(tokens[^1]);
                tokens.RemoveAt(tokens.Count - 1);
                stdin = ReadHeredoc(lines, ref i, word, () => Fail("unterminated heredoc"));
            }
            steps.Add(new CaseStep(lineNo, tokens, stdin, expectFailure, null));
        }
        if (daemon != null) FlushDaemon();
        if (steps.Count == 0) throw new FormatException($"{source}: no steps");
        return steps;
    }

    static string HeredocWord(string token) => token[2..].Trim('\'', '"');

    static string ReadHeredoc(string[] lines, ref int i, string word, Func<Exception> fail)
    {
        var sb = new StringBuilder();
        while (true)
        {
            if (i >= lines.Length) throw fail();
            var l = lines[i++];
            if (l.TrimEnd() == word) return sb.ToString();
            sb.Append(l).Append('\n');
        }
    }

    /// <summary>Splits on blanks; '…' is literal, "…" honours \" and \\, a bare \ escapes one character.</summary>
    public static List<string> Tokenize(string line, Func<Exception> unterminated)
    {
        var result = new List<string>();
        var cur = new StringBuilder();
        bool inToken = false;
        for (int k = 0; k < line.Length; k++)
        {
            char c = line[k];
            if (char.IsWhiteSpace(c))
            {
                if (inToken) { result.Add(cur.ToString()); cur.Clear(); inToken = false; }
                continue;
            }
            inToken = true;
            if (c == '\'')
            {
                int end = line.IndexOf('\'', k + 1);
                if (end < 0) throw unterminated();
                cur.Append(line, k + 1, end - k - 1);
                k = end;
            }
            else if (c == '"')
            {
                k++;
                while (true)
                {
                    if (k >= line.Length) throw unterminated();
                    if (line[k] == '"') break;
                    if (line[k] == '\\' && k + 1 < line.Length && (line[k + 1] == '"' || line[k + 1] == '\\')) k++;
                    cur.Append(line[k++]);
                }
            }
            else if (c == '\\' && k + 1 < line.Length)
            {
                cur.Append(line[++k]);
            }
            else cur.Append(c);
        }
        if (inToken) result.Add(cur.ToString());
        return result;
    }

    sealed class DaemonBuilder(string reason)
    {
        public int Exit;
        public string Stdout = "";
        public string Stderr = "";
        public DaemonExpectation Build() => new(reason, Exit, Stdout, Stderr);
    }
}
