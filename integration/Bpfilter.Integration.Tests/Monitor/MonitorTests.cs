using System.Diagnostics;
using System.Text.RegularExpressions;
using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Monitor;

/// <summary>
/// `nft monitor` against the kernel and `bfnft monitor` against bpfilterd, each in a fresh namespace,
/// watch the same scripted changes; what they print must be identical (process ids of NEWGEN aside).
/// Several monitors run at once on each side, one per output variant.
/// </summary>
public partial class MonitorTests
{
    /// <summary>Each monitor's arguments; all of them watch one run of <see cref="Steps"/>.</summary>
    static readonly string[][] Variants =
    [
        ["monitor"],
        ["-a", "monitor"],
        ["-j", "monitor"],
        ["monitor", "new", "rules"],
        ["-a", "monitor", "destroy"],
        ["-a", "monitor", "elements"],
    ];

    /// <summary>One nft invocation (one batch) per step; a step starting with `!` must fail, one starting with `-e` runs with -e.</summary>
    static readonly string[] Steps =
    [
        """
        add table inet t
        add chain inet t c { type filter hook input priority 0; policy accept; }
        add rule inet t c tcp dport 22 accept
        add set inet t s { type ipv4_addr; }
        add element inet t s { 10.0.0.1, 10.0.0.2 }
        add counter inet t cnt
        add quota inet t q { 25 mbytes }
        add rule inet t c ip saddr { 192.0.2.1, 192.0.2.2 } drop
        add rule inet t c ip saddr @s counter
        """,
        "add set inet t r { type ipv4_addr; flags interval; }\nadd element inet t r { 10.1.0.0/16, 10.3.0.1-10.3.0.9 }",
        "add map inet t m { type ipv4_addr : verdict; }\nadd chain inet t c2\nadd element inet t m { 10.0.0.9 : jump c2 }",
        "add chain inet t d\nadd rule inet t d counter jump c2\ninsert rule inet t c ip daddr 198.51.100.1 counter",
        "! add rule inet t nosuchchain accept",
        "delete element inet t s { 10.0.0.1 }",
        "add table ip x { flags dormant; }\nadd chain ip x y\nadd rule ip x y meta mark 1 counter",
        "flush chain inet t d",
        "flush set inet t s",
        "delete counter inet t cnt",
        "add table ip6 y\ndelete table ip6 y",
        "flush chain inet t c",
        "delete table inet t",
        """
        add table inet u { comment "hello"; }
        add chain inet u c { type filter hook input priority 0; policy accept; }
        add rule inet u c ip saddr { 1.1.1.1, 2.2.2.2 } counter
        add rule inet u c tcp dport 80 counter
        add counter inet u named
        add rule inet u c counter name "named"
        add map inet u vm { type ipv4_addr : verdict; flags interval; }
        add element inet u vm { 10.0.0.0/8 : drop }
        """,
        // replace: the old rule and its anonymous set go, the new rule comes; a chain update is NEWCHAIN
        "replace rule inet u c handle 3 ip saddr { 3.3.3.3 } counter\nchain inet u c { policy drop; }",
        "rename chain inet u c c9",
        "delete rule inet u c9 handle 4",
        "-e\nadd rule inet u c9 udp dport 53 accept", // echoed to its requester, multicast to the monitors
        "reset counters", // no event
        "flush table inet u",
        "delete element inet u vm { 10.0.0.0/8 }",
        "flush ruleset",
        "add table ip zz_end",
    ];

    [Fact]
    public void MonitorsPrintWhatTheKernelsPrint()
    {
        var missing = RepoPaths.MissingReason();
        Assert.True(missing.Length == 0, missing);
        List<string> kernelOut, daemonOut;
        using (var kernel = new KernelTarget()) kernelOut = Watch(kernel);
        using (var daemon = new DaemonTarget())
        {
            daemonOut = Watch(daemon);
            Assert.True(daemon.Health().Length == 0, daemon.Health());
        }
        var report = new List<string>();
        for (int i = 0; i < Variants.Length; i++)
            if (kernelOut[i] != daemonOut[i])
                report.Add($"nft {string.Join(' ', Variants[i])}:\n{UnifiedDiff.Create(kernelOut[i], daemonOut[i], "kernel", "bpfilterd")}");
        Assert.True(report.Count == 0, string.Join("\n", report));
        // The scripted changes are seen at all (an empty output would compare equal too).
        Assert.Contains("add rule inet t c tcp dport 22 accept # handle", kernelOut[1]);
        Assert.Contains("delete set inet t __set0", kernelOut[0]);
        Assert.Contains("add rule inet u c9 udp dport 53 accept", kernelOut[3]);
    }

    /// <summary>Starts every variant, waits until all are subscribed, runs the steps, stops them and normalizes.</summary>
    static List<string> Watch(INftTarget target)
    {
        var monitors = Variants.Select(v => target.StartNft(v)).ToList();
        try
        {
            WaitFor(() => target.NftablesListeners() >= monitors.Count, $"{target.Label}: monitors did not subscribe");
            foreach (var step in Steps)
            {
                bool fails = step.StartsWith('!'), echo = step.StartsWith("-e\n");
                var r = target.Nft(echo ? ["-e", "-f", "-"] : ["-f", "-"], fails ? step[1..] : echo ? step[3..] : step);
                Assert.True(fails ? r.Exit != 0 : r.Exit == 0, $"{target.Label}: step\n{step}\n{r}");
            }
            WaitFor(() => monitors[0].Stdout.Contains("add table ip zz_end"), $"{target.Label}: the last change never reached `nft monitor`");
            Thread.Sleep(500); // the other monitors get the same commit in the same delivery
            var results = monitors.Select(m => m.Stop()).ToList();
            foreach (var (r, v) in results.Zip(Variants))
                Assert.True(r.Stderr.Length == 0, $"{target.Label}: nft {string.Join(' ', v)}: {r}");
            return results.Select(r => GenPid().Replace(r.Stdout, "by process PID")).ToList();
        }
        finally
        {
            foreach (var m in monitors) m.Dispose();
        }
    }

    static void WaitFor(Func<bool> done, string why)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(20)) throw new TimeoutException(why);
            Thread.Sleep(50);
        }
    }

    [GeneratedRegex(@"by process \d+")]
    private static partial Regex GenPid();
}
