using System.Text.RegularExpressions;
using Bpfilter.Testing;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// Sets updated from the packet path (nft_dynset) running in BPF against the kernel: the same ruleset in a kernel
/// namespace and in bpfilterd (`--placement bpf-only`, so BPF runs the dynset), the same packets (UDP from the
/// namespace itself to 127.0.0.x, through the output hook), then the same nft commands on both sides: listings,
/// `get element`, `delete element`, `flush set`, a full set refusing `add element`, and the elements surviving
/// commits that change other elements, recompile the program or restart the daemon. Listings are compared with
/// every `expires` taken out after checking that each side's lies within <see cref="Tolerance"/> of the other's.
/// </summary>
public sealed partial class PacketPathSetTrafficTests
{
    const string Ruleset = """
        table ip t {
            set seen {
                type ipv4_addr
                size 8
                flags dynamic,timeout
                timeout 1m
            }
            set fixed {
                type ipv4_addr
                size 3
                flags dynamic
            }
            chain out {
                type filter hook output priority 0; policy accept;
                udp dport 9 add @seen { ip daddr }
                udp dport 10 add @seen { ip daddr timeout 30s }
                udp dport 11 update @seen { ip daddr timeout 2m }
                udp dport 12 add @fixed { ip daddr }
                udp dport 13 delete @seen { ip daddr }
            }
        }
        """;

    /// <summary>
    /// How far apart the two sides' `expires` of one element may be beyond the time their commands took: each command
    /// runs on one side, then the other, so an element is made (and listed) on the two sides at most that time apart.
    /// </summary>
    const long Tolerance = 1500;

    [GeneratedRegex(@"(\d+\.\d+\.\d+\.\d+)(?: counter packets \d+ bytes \d+)?(?: timeout ([0-9hms]+))? expires ([0-9hms]+)")]
    private static partial Regex TimedElement();

    [GeneratedRegex(@" expires [0-9hms]+")]
    private static partial Regex Expires();

    static long Ms(string d) => SetTimeoutTrafficTests.Ms(d);

    /// <summary>
    /// `table ip t` with set <paramref name="set"/> (its declaration, `;`-separated) and an output chain
    /// <paramref name="chain"/> (filter, priority 0, policy accept) of <paramref name="rules"/>.
    /// </summary>
    internal static string OutputTable(string set, string declaration, string chain, params string[] rules) => $$"""
        table ip t {
            set {{set}} { {{declaration}} }
            chain {{chain}} {
                type filter hook output priority 0; policy accept;
                {{string.Join("\n", rules)}}
            }
        }
        """;

    /// <summary>The kernel side and the daemon side, driven alike.</summary>
    internal sealed class Sides : IDisposable
    {
        public readonly NetNs Kernel;
        public readonly EnforcementRig Rig;
        /// <summary>The longest a command took on both sides so far, ms (a loaded machine stretches it to seconds).</summary>
        long _longestPair;

        (ProcessResult, ProcessResult) Both(Func<ProcessResult> kernel, Func<ProcessResult> daemon)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            var r = (kernel(), daemon());
            _longestPair = Math.Max(_longestPair, sw.ElapsedMilliseconds);
            return r;
        }

        /// <param name="more">more bpfilterd arguments (e.g. --test-fault)</param>
        public Sides(string placement = "bpf-only", string? pinDir = null, params string[] more)
        {
            Kernel = new NetNs();
            // a constructor that throws is never disposed: what it made so far goes here (before, a daemon that did not
            // start in time left the kernel's namespace behind)
            try
            {
                Rig = new EnforcementRig([.. pinDir == null ? ["--placement", placement] : new[] { "--placement", placement, "--pin-dir", pinDir }, .. more]);
                Kernel.Ip("link", "set", "lo", "up");
            }
            catch
            {
                Rig?.Dispose();
                Kernel.Dispose();
                throw;
            }
        }

        public (ProcessResult Kernel, ProcessResult Daemon) Nft(string script) =>
            Both(() => Kernel.Exec("nft", ["-f", "-"], script), () => Rig.Daemon.Bfnft(["-f", "-"], script));

        public (ProcessResult Kernel, ProcessResult Daemon) Command(params string[] args) =>
            Both(() => Kernel.Exec("nft", args), () => Rig.Daemon.Bfnft(args));

        /// <summary>Both succeed.</summary>
        public void Apply(string script)
        {
            var (k, d) = Nft(script);
            Assert.True(k.Exit == 0, $"kernel: {k.Stderr}\n{script}");
            Assert.True(d.Exit == 0, $"bpfilterd: {d.Stderr}\n{script}\n{Rig.Daemon.Log}");
        }

        /// <summary>`nft ARGS` succeeds on both sides.</summary>
        public (ProcessResult Kernel, ProcessResult Daemon) Succeeds(params string[] args)
        {
            var (k, d) = Command(args);
            Assert.True(k.Exit == 0 && d.Exit == 0, $"{k.Stderr} {d.Stderr}");
            return (k, d);
        }

        /// <summary>`nft ARGS` succeeds on both sides with the same output (`list counters`, `reset quotas`, ...).</summary>
        public string SameOutput(params string[] args)
        {
            var (k, d) = Succeeds(args);
            Assert.Equal(k.Stdout, d.Stdout);
            return k.Stdout;
        }

        /// <summary>One UDP datagram from each namespace to each address and port (through the output hook).</summary>
        public void Send(int port, params string[] addrs)
        {
            var script = string.Join("; ", addrs.Select(a => $"printf x > /dev/udp/{a}/{port}"));
            var (k, d) = Both(() => Kernel.Exec("bash", ["-c", script]), () => Rig.Daemon.Ns.Exec("bash", ["-c", script]));
            Assert.Equal(0, k.Exit);
            Assert.Equal(0, d.Exit);
        }

        /// <summary>Both listings of <paramref name="what"/>, equal once every element's `expires` is within <see cref="Tolerance"/>.</summary>
        public string SameListing(string what = "table ip t")
        {
            var (k, d) = Command(["list", .. what.Split(' ')]);
            Assert.True(k.Exit == 0 && d.Exit == 0, $"{k.Stderr} {d.Stderr}");
            var ke = TimedElement().Matches(k.Stdout).ToDictionary(m => m.Groups[1].Value, m => Ms(m.Groups[3].Value));
            var de = TimedElement().Matches(d.Stdout).ToDictionary(m => m.Groups[1].Value, m => Ms(m.Groups[3].Value));
            Assert.True(ke.Keys.Order().SequenceEqual(de.Keys.Order()), $"kernel:\n{k.Stdout}\nbpfilterd:\n{d.Stdout}\n{Rig.Explain()}\n{Rig.Daemon.Log}");
            var tolerance = Tolerance + _longestPair;
            foreach (var (addr, left) in ke)
                Assert.True(Math.Abs(left - de[addr]) <= tolerance, $"{addr}: kernel {left} ms, bpfilterd {de[addr]} ms (tolerance {tolerance})\n{k.Stdout}\n{d.Stdout}");
            Assert.Equal(Expires().Replace(k.Stdout, " expires X"), Expires().Replace(d.Stdout, " expires X"));
            return k.Stdout;
        }

        /// <summary><see cref="SameListing"/> of `table ip t`, which holds each of <paramref name="parts"/>.</summary>
        public string SameListingWith(params string[] parts)
        {
            var listing = SameListing();
            foreach (var p in parts) Assert.Contains(p, listing);
            return listing;
        }

        /// <summary>The handle of the rule of chain `ip t` <paramref name="chain"/> that <paramref name="rule"/> (a regex) finds, the same on both sides.</summary>
        public string SameHandle(string chain, string rule)
        {
            var (k, d) = Command("-a", "list", "chain", "ip", "t", chain);
            var handle = Regex.Match(k.Stdout, rule + @" .* # handle (\d+)").Groups[1].Value;
            Assert.Equal(handle, Regex.Match(d.Stdout, rule + @" .* # handle (\d+)").Groups[1].Value);
            return handle;
        }

        /// <summary>
        /// A clean restart of bpfilterd, then a SIGKILL one (pinned maps and the state file reopened), each followed by
        /// <paramref name="afterClean"/> and <paramref name="afterKill"/> (the packets sent and the listings checked then).
        /// </summary>
        public void AcrossRestarts(Action afterClean, Action afterKill)
        {
            Assert.Equal(0, Rig.Daemon.Terminate());
            Rig.Daemon.Restart();
            afterClean();
            Rig.Daemon.Kill();
            Rig.Daemon.Restart();
            afterKill();
        }

        public void Dispose()
        {
            Rig.Dispose();
            Kernel.Dispose();
        }
    }

    /// <summary>
    /// <paramref name="inKernel"/>: the chain also rejects (reject at an ip hook runs in the kernel), so auto placement
    /// puts it in the kernel's nf_tables and the kernel's own packet path writes the sets.
    /// </summary>
    [Theory]
    [InlineData("auto", false)]
    [InlineData("bpf-only", false)]
    [InlineData("auto", true)]
    public void ElementsThePacketPathAddsAreListedDeletedFlushedAndCountedAsInTheKernel(string placement, bool inKernel)
    {
        using var s = new Sides(placement);
        s.Apply(inKernel ? Ruleset.Replace("udp dport 13 delete", "udp dport 14 reject\n        udp dport 13 delete") : Ruleset);
        Assert.Contains(inKernel ? "table ip t chain out: kernel nf_tables" : "table ip t chain out: BPF", s.Rig.Explain());
        s.Apply("add element ip t seen { 127.0.0.9 timeout 2m comment \"committed\", 127.0.0.8 }");
        s.Send(9, "127.0.0.2", "127.0.0.9");   // 127.0.0.9 is live: add keeps it as it is
        s.Send(10, "127.0.0.3");               // own timeout 30s, listed
        s.Send(11, "127.0.0.4", "127.0.0.8");  // update renews 127.0.0.8 to 2m and adds 127.0.0.4 with a 2m timeout
        s.Send(12, "127.0.0.5");
        var listing = s.SameListing();
        Assert.Contains("127.0.0.2 expires", listing); // the set's own timeout is not printed
        Assert.Contains("127.0.0.3 timeout 30s expires", listing);
        Assert.Contains("127.0.0.5", listing);

        // get element answers for an element the packet path added
        var (gk, gd) = s.Command("get", "element", "ip", "t", "seen", "{ 127.0.0.3 }");
        Assert.True(gk.Exit == 0 && gd.Exit == 0, gd.Stderr);
        Assert.Equal(Expires().Replace(gk.Stdout, " expires X"), Expires().Replace(gd.Stdout, " expires X"));

        // delete takes it out (no ENOENT), also from the map: the packet path adds it again (nft 1.0.6 has no
        // `destroy element`; DESTROYSETELEM goes through the same engine path, see the engine's tests)
        s.Apply("delete element ip t seen { 127.0.0.2, 127.0.0.3 }");
        s.SameListing("set ip t seen");
        s.Send(9, "127.0.0.2");
        s.SameListing("set ip t seen");

        // a full set refuses an add (ENFILE) counting the packet path's elements; a flush empties the map too
        s.Send(12, "127.0.0.6", "127.0.0.7");
        var (fk, fd) = s.Nft("add element ip t fixed { 10.1.1.1 }");
        Assert.Equal(fk.Exit, fd.Exit);
        Assert.NotEqual(0, fd.Exit);
        Assert.Contains("Too many open files in system", fk.Stderr);
        Assert.Contains("Too many open files in system", fd.Stderr);
        s.Send(12, "127.0.0.10"); // full: the rule breaks, nothing added
        s.SameListing("set ip t fixed");
        s.Apply("flush set ip t fixed");
        s.Send(12, "127.0.0.11");
        Assert.Contains("127.0.0.11", s.SameListing("set ip t fixed"));

        // the packet path's delete
        s.Send(13, "127.0.0.9");
        Assert.DoesNotContain("127.0.0.9", s.SameListing("set ip t seen"));
    }

    [Fact]
    public void ElementsThePacketPathAddsSurviveCommitsRecompilationsAndRestarts()
    {
        // pinned programs and maps outlive the daemon (see PersistenceTests): the maps hold what the packet path added
        using var pins = new PersistenceTests.PinFs();
        using var s = new Sides(pinDir: pins.Path);
        // timeouts longer than the test: at load ~35 it ran 58 s, so 127.0.0.3's 30 s had run out on both sides
        // (the listings agreed, without it) before the last check looked for it
        s.Apply(Ruleset.Replace("timeout 1m", "timeout 1h").Replace("timeout 30s", "timeout 30m"));
        s.Send(9, "127.0.0.2");
        s.Send(10, "127.0.0.3");
        s.Send(12, "127.0.0.5");
        // a commit that changes other elements of the set (an element-only batch)
        s.Apply("add element ip t seen { 127.0.0.20 }\ndelete element ip t seen { 127.0.0.20 }\nadd element ip t seen { 127.0.0.21 }");
        s.SameListing();
        var before = s.Rig.ProgramIds();
        // a commit that recompiles the program: a rule added to the chain, and a chain of another table
        s.Apply("add rule ip t out udp dport 14 counter");
        s.Apply("table ip u {\n chain c {\n type filter hook input priority 5; policy accept;\n udp dport 15 counter\n }\n}");
        Assert.NotEqual(before.Values.Order(), s.Rig.ProgramIds().Values.Order());
        s.Send(9, "127.0.0.6");
        Assert.Contains("127.0.0.3 timeout 30m expires", s.SameListing("table ip t"));

        // restarts: SIGTERM, then SIGKILL
        Assert.Equal(0, s.Rig.Daemon.Terminate());
        s.Rig.Daemon.Restart();
        s.SameListing("table ip t");
        s.Send(9, "127.0.0.7");
        s.Rig.Daemon.Kill();
        s.Rig.Daemon.Restart();
        var listing = s.SameListing("table ip t");
        foreach (var a in new[] { "127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.21" }) Assert.Contains(a, listing);
        // and they still match in BPF after the restart: the packet path's delete finds them
        s.Send(13, "127.0.0.2");
        Assert.DoesNotContain("127.0.0.2 ", s.SameListing("set ip t seen"));
    }

    /// <summary>
    /// A full set whose elements have expired takes a packet's new element once the set's garbage collection
    /// has run (nft_rhash_gc, periodic): until then the expired elements count against `size`.
    /// </summary>
    [Fact]
    public void AFullSetTakesThePacketPathsElementOnceTheExpiredOnesAreCollected()
    {
        using var s = new Sides();
        s.Apply("""
            table ip t {
                set short {
                    type ipv4_addr
                    size 2
                    flags dynamic,timeout
                    timeout 3s
                }
                chain out {
                    type filter hook output priority 0; policy accept;
                    udp dport 9 add @short { ip daddr }
                }
            }
            """);
        s.Send(9, "127.0.0.2", "127.0.0.3");
        s.Send(9, "127.0.0.4"); // full: the rule breaks
        Assert.DoesNotContain("127.0.0.4", s.SameListing());
        Thread.Sleep(7000);     // expired, and collected on both sides (3 s: under load the sends of both sides
                                // and the first listings took more than 1 s, and the kernel's elements were gone)
        s.Send(9, "127.0.0.4");
        var listing = s.SameListing();
        Assert.Contains("127.0.0.4", listing);
        Assert.DoesNotContain("127.0.0.2", listing);
    }
}
