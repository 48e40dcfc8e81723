using System.Text.RegularExpressions;
using Bpfilter.Backend.Ir;
using Bpfilter.Backend.Libbpf;
using Bpfilter.Backend.Loader;
using static Bpfilter.Backend.Tests.Codegen.Harness;

namespace Bpfilter.Backend.Tests.Codegen;

/// <summary>
/// The kernel as the oracle for packet-path set updates: the same dynset rules and the same three UDP packets
/// in a throwaway namespace's nf_tables and through the compiled program (BPF_PROG_TEST_RUN) leave the same
/// elements, the same expiring/permanent state, expiries within a second of each other (plus the time each side
/// took from its load to its listing, which a loaded machine stretches), and the same counter behind a full set.
/// </summary>
public class PacketPathSetKernelTests
{
    const string Ruleset = """
        table ip t {
          set a { type ipv4_addr; flags timeout; elements = { 127.0.0.1 timeout 1h } }
          set b { type ipv4_addr; size 1; flags dynamic; }
          set c { type ipv4_addr; flags timeout; elements = { 127.0.0.1 timeout 1h } }
          set d { type ipv4_addr; flags timeout; timeout 2h; elements = { 127.0.0.1 timeout 1h } }
          set f { type ipv4_addr; flags timeout; elements = { 127.0.0.1 } }
          set g { type ipv4_addr; flags timeout; }
          set h { type ipv4_addr . inet_service; flags dynamic,timeout; }
          chain in {
            type filter hook input priority 0; policy accept;
            udp dport 9 update @a { ip saddr }
            udp dport 9 add @c { ip saddr timeout 5s }
            udp dport 9 update @d { ip saddr }
            udp dport 9 delete @f { ip saddr }
            udp dport 9 add @g { ip saddr timeout 30s }
            udp dport 9 update @h { ip daddr . udp dport timeout 1m }
            udp dport 9 add @b { ip daddr } counter
          }
        }
        """;

    /// <summary>Destinations of the packets, all from 127.0.0.1 to UDP port 9.</summary>
    static readonly string[] Destinations = ["127.0.0.1", "127.0.0.2", "127.0.0.2"];

    [Fact]
    public void TheSameTrafficLeavesTheSameSets()
    {
        var kernel = RunKernel();
        var bpf = RunBpf();
        Assert.Equal(kernel.Counter, bpf.Counter);
        Assert.Equal(kernel.Sets.Keys.Order(), bpf.Sets.Keys.Order());
        foreach (var (set, expect) in kernel.Sets)
        {
            var got = bpf.Sets[set];
            Assert.True(expect.Keys.Order().SequenceEqual(got.Keys.Order()), $"set {set}: kernel {string.Join(",", expect.Keys)}, bpf {string.Join(",", got.Keys)}");
            foreach (var (key, expires) in expect)
            {
                Assert.Equal(expires is null, got[key] is null);
                // each side lists an element's remaining time up to its own Span after it was made or renewed
                if (expires is { } ms) Assert.InRange(got[key]!.Value, ms - bpf.Span - 1000, ms + kernel.Span + 1000);
            }
        }
    }

    /// <param name="Span">milliseconds from the first element's creation (the load) to the listing</param>
    sealed record Outcome(ulong Counter, Dictionary<string, Dictionary<string, long?>> Sets, long Span);

    static Outcome RunKernel()
    {
        using var ns = NetNs.Create(withDevices: false);
        ns.Ip("link", "set", "lo", "up");
        var span = System.Diagnostics.Stopwatch.StartNew();
        var load = ns.Exec("nft", ["-f", "-"], stdin: Ruleset);
        Assert.True(load.Exit == 0, load.ToString());
        foreach (var d in Destinations)
            ns.Run(() =>
            {
                using var u = new System.Net.Sockets.UdpClient();
                return u.Send([1, 2, 3, 4], 4, d, 9);
            });
        var list = ns.Exec("nft", ["list", "table", "ip", "t"]);
        var elapsed = span.ElapsedMilliseconds;
        Assert.True(list.Exit == 0, list.ToString());
        var sets = new Dictionary<string, Dictionary<string, long?>>();
        foreach (Match m in Regex.Matches(list.Stdout, @"set (\w+) \{(.*?)\n\t\}", RegexOptions.Singleline))
        {
            var elements = new Dictionary<string, long?>();
            if (Regex.Match(m.Groups[2].Value, @"elements = \{ (.*?) \}", RegexOptions.Singleline) is { Success: true } e)
                foreach (var part in e.Groups[1].Value.Split(',', StringSplitOptions.TrimEntries))
                {
                    var addr = Regex.Match(part, @"^(.*?)(?: timeout| expires|$)").Groups[1].Value;
                    var exp = Regex.Match(part, @"expires (\S+)");
                    elements[addr] = exp.Success ? Duration(exp.Groups[1].Value) : null;
                }
            sets[m.Groups[1].Value] = elements;
        }
        var counter = Regex.Match(list.Stdout, @"add @b \{ ip daddr \} counter packets (\d+)");
        Assert.True(counter.Success, list.Stdout);
        return new Outcome(ulong.Parse(counter.Groups[1].Value), sets, elapsed);
    }

    /// <summary>nft's duration (1h59m59s932ms) in milliseconds.</summary>
    static long Duration(string s)
    {
        long ms = 0;
        foreach (Match m in Regex.Matches(s, @"(\d+)(ms|d|h|m|s)"))
            ms += long.Parse(m.Groups[1].Value) * m.Groups[2].Value switch { "d" => 86_400_000, "h" => 3_600_000, "m" => 60_000, "s" => 1000, _ => 1 };
        return ms;
    }

    static Outcome RunBpf()
    {
        var span = System.Diagnostics.Stopwatch.StartNew();
        var hz = (ulong)KernelClock.Hz!.Value;
        var now = KernelClock.Jiffies64();
        SetElement Local(ulong? expires = null) => SetElement.Exact(V4("127.0.0.1")) with { Expires = expires };
        Backend.Ir.Set Set(string name, bool timeouts, int size = 65535, params SetElement[] elements) =>
            new(name, Fields.Ip.Saddr, SetData.NoData, elements.ToValueList(), Timeouts: timeouts) { PacketWritten = true, Size = size };
        var sets = new[]
        {
            Set("a", true, elements: [Local(now + 3600 * hz)]),
            Set("b", false, size: 1),
            Set("c", true, elements: [Local(now + 3600 * hz)]),
            Set("d", true, elements: [Local(now + 3600 * hz)]),
            Set("f", true, elements: [Local()]),
            Set("g", true),
            new("h", ConcatKey, SetData.NoData, ValueList<SetElement>.Empty, Timeouts: true) { PacketWritten = true, Size = 65535 },
        };
        var dport = Matcher.Eq(Fields.Udp.Dport, U16(9));
        Rule Update(SetUpdateOp op, string set, TimeSpan? timeout, MatchKey? key = null, params Statement[] more) =>
            new(ValueList.Of(dport), ValueList.Of<Statement>([new SetUpdateStatement(op, set, key ?? Fields.Ip.Saddr, timeout), .. more]), Verdict.Continue);
        using var p = Load(Xdp, Verdict.Accept, [
            Update(SetUpdateOp.Update, "a", null),
            Update(SetUpdateOp.Add, "c", TimeSpan.FromSeconds(5)),
            Update(SetUpdateOp.Update, "d", TimeSpan.FromHours(2)), // the set's default, as the lifter resolves it
            Update(SetUpdateOp.Delete, "f", null),
            Update(SetUpdateOp.Add, "g", TimeSpan.FromSeconds(30)),
            Update(SetUpdateOp.Update, "h", TimeSpan.FromMinutes(1), ConcatKey),
            Update(SetUpdateOp.Add, "b", null, Fields.Ip.Daddr, new CounterStatement(1)),
        ], sets: sets);
        foreach (var d in Destinations)
            Assert.Equal(XdpPass, p.Run(PacketBuilder.Ether().Ipv4("127.0.0.1", d).Udp(40000, 9)));
        var at = KernelClock.Jiffies64();
        var elapsed = span.ElapsedMilliseconds;
        var result = new Dictionary<string, Dictionary<string, long?>>();
        foreach (var s in sets)
        {
            var map = p.SetMapCopy(s.Name, p.Generation)!;
            var elements = new Dictionary<string, long?>();
            foreach (var key in map.Keys())
            {
                var value = new byte[map.ValueSize];
                Assert.True(map.TryLookup(key, value));
                ulong expires = s.Timeouts ? BitConverter.ToUInt64(value, SetLayoutExpires) : 0;
                if (expires != 0 && at >= expires) continue; // expired: neither listed nor matched
                elements[Format(key)] = expires == 0 ? null : (long)(expires - at) * KernelClock.TickMs!.Value;
            }
            result[s.Name] = elements;
        }
        return new Outcome(p.Counter(1).Packets, result, elapsed);
    }

    static readonly MatchKey ConcatKey = new(Fields.Ip.Daddr, Fields.Udp.Dport);

    /// <summary>A map key as nft lists it: an address, or an address and a port (`127.0.0.2 . 9`).</summary>
    static string Format(byte[] key) => key.Length == 4 ? new System.Net.IPAddress(key).ToString()
        : $"{new System.Net.IPAddress(key[..4])} . {key[4] << 8 | key[5]}";

    /// <summary>Where the expiry sits in a set map value (SetLayout.ExpiresOffset).</summary>
    const int SetLayoutExpires = 8;
}
