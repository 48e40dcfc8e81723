using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests;

/// <summary>The case parser and the diff: the harness must read cases and report differences exactly.</summary>
public class HarnessTests
{
    [Fact]
    public void ParsesStepsHeredocsMarksAndDaemonExpectations()
    {
        const string text = """
            # comment
            nft add table ip t

            ! nft add chain ip t c { type filter hook input priority 0\; }
            nft -f - <<EOF
            table ip t {
            	# not a comment to the parser: part of stdin
            }
            EOF
            ? nft add flowtable inet t f
            @daemon-differs refused on purpose
            @exit 1
            @stderr <<END
            Error: x
            END
            nft add rule ip t c 'ip saddr 10.0.0.1' comment "a \"b\""
            """;
        var steps = CaseParser.Parse(text, "test");
        Assert.Equal(5, steps.Count);
        Assert.Equal(["add", "table", "ip", "t"], steps[0].Args);
        Assert.False(steps[0].ExpectFailure);
        Assert.Equal(2, steps[0].Line);
        Assert.True(steps[1].ExpectFailure);
        Assert.Equal(["add", "chain", "ip", "t", "c", "{", "type", "filter", "hook", "input", "priority", "0;", "}"], steps[1].Args);
        Assert.Equal(["-f", "-"], steps[2].Args);
        Assert.Equal("table ip t {\n\t# not a comment to the parser: part of stdin\n}\n", steps[2].Stdin);
        Assert.Null(steps[3].ExpectFailure);
        Assert.Equal(new DaemonExpectation("refused on purpose", 1, "", "Error: x\n"), steps[3].Daemon);
        Assert.Null(steps[2].Daemon);
        Assert.Equal(["add", "rule", "ip", "t", "c", "ip saddr 10.0.0.1", "comment", "a \"b\""], steps[4].Args);
    }

    [Theory]
    [InlineData("nft list ruleset <<EOF\nno end\n", "unterminated heredoc")]
    [InlineData("ls /", "a step starts with `nft`")]
    [InlineData("@exit 1", "outside a @daemon-differs block")]
    [InlineData("nft add table 'ip", "unterminated quote")]
    [InlineData("# nothing", "no steps")]
    public void RejectsMalformedCases(string text, string message)
    {
        var e = Assert.Throws<FormatException>(() => CaseParser.Parse(text, "bad"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void DiffShowsRemovedThenAddedLinesWithContext()
    {
        var diff = UnifiedDiff.Create("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n", "kernel", "daemon", context: 1);
        Assert.Equal("--- kernel\n+++ daemon\n@@ -1,4 +1,5 @@\n a\n-b\n+B\n c\n d\n+e\n", diff);
    }

    [Fact]
    public void EchoPidPlaceholderReplacesOnlyThatPid()
    {
        const string echo = "add table ip t\n# new generation 2 by process 1234 (nft)\n";
        Assert.Equal("add table ip t\n# new generation 2 by process <this nft> (nft)\n", CaseRunner.WithPidPlaceholder(echo, 1234));
        Assert.Equal(echo, CaseRunner.WithPidPlaceholder(echo, 4321));
    }
}
