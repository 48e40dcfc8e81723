using System.Text;
using Bpfilter.Integration.Tests.Harness;

namespace Bpfilter.Integration.Tests.Packets;

/// <summary>What one side did with a case: the load, per packet delivered or not, the listing.</summary>
public sealed record SideResult(string Label, ProcessResult Load, IReadOnlyList<bool> Delivered, string Listing, int Stray, string Health)
{
    public IReadOnlyList<string> StraySamples { get; init; } = [];
}

/// <summary>Runs a case on one side, then compares two sides' results.</summary>
public static class PacketRunner
{
    /// <summary>How long a packet that does not arrive is waited for (BFNT_PACKET_WAIT_MS overrides).</summary>
    public static int WaitMs =>
        int.TryParse(Environment.GetEnvironmentVariable("BFNT_PACKET_WAIT_MS"), out var ms) && ms > 0 ? ms : 300;

    public static IReadOnlyList<CraftedPacket> Craft(PacketCase c) =>
        c.Packets.Select(p =>
        {
            try { return Craft(c, p); }
            catch (FormatException e) { throw new FormatException($"{c.Name}: packet {p.Name} (line {p.Line}): {e.Message}"); }
        }).ToList();

    /// <summary>
    /// One packet's bytes and where it must show up: `arrives at` if given, else by its destination
    /// (and the case's routes). In the bridge topology a frame goes to the MAC of where it is
    /// delivered (br0 carries fw0's MAC), not to the port it enters by. An ARP request for one of
    /// fw's addresses is delivered when fw's reply reaches the sender; a bridged ARP frame when the
    /// frame itself reaches the far side.
    /// </summary>
    static CraftedPacket Craft(PacketCase c, PacketSpec p)
    {
        var arp = p.Layers.FirstOrDefault(l => l.Kind == "arp");
        var ip = p.Layers.FirstOrDefault(l => l.Kind is "ip4" or "ip6");
        var destination = arp != null
            ? arp.Address("tpa", System.Net.Sockets.AddressFamily.InterNetwork)
            : ip?.Address("dst", ip.Kind == "ip4" ? System.Net.Sockets.AddressFamily.InterNetwork : System.Net.Sockets.AddressFamily.InterNetworkV6)
              ?? throw new FormatException("no ip4, ip6 or arp layer");
        var sender = p.From == Origin.Back ? Observation.Back : Observation.Peer;
        Observation where;
        if (arp != null)
        {
            bool request = arp.Number("op", 1, 65535) == 1;
            where = request && Topology.IsFwAddress(destination) ? sender
                : c.Topology == TopologyKind.Bridge && p.From == Origin.Peer && destination.Equals(Topology.BackV4) ? Observation.Back
                : c.Topology == TopologyKind.Bridge && p.From == Origin.Back && destination.Equals(Topology.PeerV4) ? Observation.Peer
                : Observation.Nowhere;
        }
        else where = p.ArrivesAt ?? Topology.ObservationFor(destination, c.Routes);

        byte[] src = [], dst = [];
        if (p.From != Origin.Fw)
        {
            src = p.From == Origin.Peer ? Topology.PeerMac : Topology.BackMac;
            dst = c.Topology == TopologyKind.Routed ? (p.From == Origin.Peer ? Topology.Fw0Mac : Topology.Fw1Mac)
                : where == Observation.Local ? Topology.Fw0Mac
                : p.From == Origin.Peer ? Topology.BackMac : Topology.PeerMac;
        }
        var crafted = PacketCrafter.Craft(c.Name, p, src, dst) with { Where = where };
        if (arp != null && where == sender)
        {
            var replier = c.Topology == TopologyKind.Bridge || p.From == Origin.Peer ? Topology.Fw0Mac : Topology.Fw1Mac;
            crafted = crafted with { ArrivalKeys = [PacketCrafter.ArpReplyKey(crafted.Fingerprints[0], replier)] };
        }
        return crafted;
    }

    /// <summary>Deletes the case's kernel-ruleset tables with the kernel's nft (absent ones are fine).</summary>
    static void DeleteKernelTables(FirewallSide side, PacketCase c)
    {
        foreach (var t in c.KernelTables) side.Topology.Fw.Exec("nft", ["delete", "table", t[0], t[1]]);
    }

    public static SideResult Run(FirewallSide side, PacketCase c, IReadOnlyList<CraftedPacket> packets, int waitMs)
    {
        var revived = side.Revive();
        if (revived.Length > 0) Console.Error.WriteLine($"{c.Name}: {revived}");
        var flush = side.Nft(["flush", "ruleset"]);
        if (flush.Exit != 0)
            return new SideResult(side.Label, flush, [], "", 0, $"flush ruleset failed: {flush}\n{side.Health()}");
        side.Topology.Prepare(c);
        try
        {
            DeleteKernelTables(side, c);
            if (c.KernelRuleset != null && side.Topology.Fw.Exec("nft", ["-f", "-"], c.KernelRuleset) is { Exit: not 0 } kernelLoad)
                return new SideResult(side.Label, kernelLoad, [], "", 0, $"kernel-ruleset failed to load: {kernelLoad}");
            var load = side.Nft(["-f", "-"], c.Ruleset);
            if (load.Exit != 0)
                return new SideResult(side.Label, load, [], "", 0, side.Health());
            side.Topology.Drain();
            side.Topology.ResetStray();
            var delivered = packets.Select(p => side.Topology.SendAndObserve(p, waitMs)).ToList();
            DeleteKernelTables(side, c);
            var list = side.Nft(["list", "ruleset"]);
            side.Topology.Drain(); // a packet that came late shows up as stray
            var listing = list.Exit == 0 ? Listing.Comparable(list.Stdout) : $"list ruleset failed: {list}";
            return new SideResult(side.Label, load, delivered, listing, side.Topology.StrayCount, side.Health())
            {
                StraySamples = side.Topology.StraySamples,
            };
        }
        finally
        {
            // The routes and kernel-ruleset tables go before the next case; the ruleset stays (the next case flushes it).
            DeleteKernelTables(side, c);
            var left = side.Topology.Restore(c);
            if (left.Length > 0) throw new InvalidOperationException($"{c.Name} on {side.Label}: {left}");
        }
    }

    /// <summary>
    /// Runs the case on both sides and compares. A delivery is only "no" after a timeout, so on a
    /// badly overloaded machine a slow packet can look dropped; it then arrives late and is seen as
    /// stray. When the first run shows that sign (strays, or the reference missing an expected
    /// delivery), both sides run again once with four times the wait, and the report says so. A
    /// plain disagreement between the sides is never retried.
    /// </summary>
    public static string RunAndCompare(PacketCase c, FirewallSide reference, FirewallSide candidate)
    {
        var packets = Craft(c);
        var a = Run(reference, c, packets, WaitMs);
        var b = Run(candidate, c, packets, WaitMs);
        WriteTranscript(c, a, b);
        var report = Compare(c, a, b);
        bool timingTrouble = a.Stray > 0 || b.Stray > 0 ||
            (a.Load.Exit == 0 && c.Packets.Where((p, i) => p.ExpectDelivered && !a.Delivered[i]).Any());
        if (report.Length == 0 || !timingTrouble) return report;
        a = Run(reference, c, packets, WaitMs * 4);
        b = Run(candidate, c, packets, WaitMs * 4);
        WriteTranscript(c, a, b);
        var second = Compare(c, a, b);
        return second.Length == 0 ? "" : $"{second}\n(second run with a {WaitMs * 4} ms wait; the first said:)\n{report}";
    }

    /// <summary>
    /// The reference must have loaded the ruleset, delivered exactly the packets the case expects,
    /// counted something and seen no stray traffic; the candidate must match it in delivery and in
    /// the listing, byte for byte. Empty when all holds; otherwise a readable report.
    /// </summary>
    public static string Compare(PacketCase c, SideResult reference, SideResult candidate)
    {
        var sb = new StringBuilder();
        CheckReference(c, reference, sb);
        if (candidate.Health.Length > 0) sb.AppendLine($"{candidate.Label}: {candidate.Health}");
        if (candidate.Load.Exit != 0)
            sb.AppendLine($"{candidate.Label} did not load the ruleset:\n{candidate.Load}");
        else if (reference.Load.Exit == 0)
        {
            for (int i = 0; i < c.Packets.Count; i++)
                if (reference.Delivered[i] != candidate.Delivered[i])
                    sb.AppendLine($"packet {c.Packets[i]}: {Outcome(reference.Delivered[i])} on {reference.Label}, {Outcome(candidate.Delivered[i])} on {candidate.Label}");
            if (reference.Listing != candidate.Listing)
                sb.AppendLine("`nft list ruleset` differs:\n" +
                    UnifiedDiff.Create(reference.Listing, candidate.Listing, reference.Label, candidate.Label));
            if (candidate.Stray > 0) sb.AppendLine($"{candidate.Label}: {candidate.Stray} stray frames/datagrams seen (noise in the topology):\n  " + string.Join("\n  ", candidate.StraySamples));
        }
        if (sb.Length > 0) sb.Insert(0, $"case {c.Name}:\n");
        return sb.ToString();
    }

    static void CheckReference(PacketCase c, SideResult r, StringBuilder sb)
    {
        if (r.Health.Length > 0) sb.AppendLine($"{r.Label}: {r.Health}");
        if (r.Load.Exit != 0)
        {
            sb.AppendLine($"{r.Label} did not load the ruleset (the case is wrong):\n{r.Load}");
            return;
        }
        for (int i = 0; i < c.Packets.Count; i++)
            if (r.Delivered[i] != c.Packets[i].ExpectDelivered)
                sb.AppendLine($"packet {c.Packets[i]}: the case expects {Outcome(c.Packets[i].ExpectDelivered)}, {r.Label} {Outcome(r.Delivered[i])} it");
        if (!System.Text.RegularExpressions.Regex.IsMatch(r.Listing, @"packets [1-9]"))
            sb.AppendLine($"{r.Label}: no counter counted anything, the case proves nothing:\n{r.Listing}");
        if (r.Stray > 0) sb.AppendLine($"{r.Label}: {r.Stray} stray frames/datagrams seen (noise in the topology):\n  " + string.Join("\n  ", r.StraySamples));
    }

    /// <summary>
    /// For a case bpfilter-nft refuses on purpose (`daemon-refuses "TEXT"`): loading it must fail with
    /// nft's "Operation not supported", TEXT must appear in nft's stderr or in what bpfilterd logged
    /// during the load, bpfilterd must survive, and the refused transaction must leave nothing behind
    /// (the ruleset, flushed just before, lists empty). No packets are sent. Empty when all holds.
    /// </summary>
    public static string CheckRefusal(PacketCase c, FirewallSide side)
    {
        if (c.DaemonRefuses == null) throw new ArgumentException($"{c.Name} has no daemon-refuses directive");
        var sb = new StringBuilder();
        var revived = side.Revive();
        if (revived.Length > 0) Console.Error.WriteLine($"{c.Name}: {revived}");
        var flush = side.Nft(["flush", "ruleset"]);
        if (flush.Exit != 0) return $"case {c.Name}:\nflush ruleset failed on {side.Label}: {flush}\n{side.Health()}";
        int logStart = side.DaemonLog.Length;
        var load = side.Nft(["-f", "-"], c.Ruleset);
        var logged = side.DaemonLog[Math.Min(logStart, side.DaemonLog.Length)..];
        if (load.Exit == 0)
            sb.AppendLine($"{side.Label} loaded a ruleset the case says it refuses (daemon-refuses \"{c.DaemonRefuses}\"); " +
                "if the refused statements are now enforced, remove the directive so the packets are compared");
        else
        {
            if (!load.Stderr.Contains("Operation not supported"))
                sb.AppendLine($"{side.Label} failed the load, but not with \"Operation not supported\":\n{load}");
            if (!load.Stderr.Contains(c.DaemonRefuses) && !logged.Contains(c.DaemonRefuses))
                sb.AppendLine($"neither nft's stderr nor bpfilterd's log names \"{c.DaemonRefuses}\":\n{load}\n--- bpfilterd log during the load\n{logged}");
        }
        var health = side.Health();
        if (health.Length > 0) sb.AppendLine($"{side.Label}: {health}");
        else
        {
            var list = side.Nft(["list", "ruleset"]);
            if (list.Exit != 0 || list.Stdout.Trim().Length > 0)
                sb.AppendLine($"{side.Label}: the refused load left something behind; `nft list ruleset`: {list}");
        }
        if (sb.Length > 0) sb.Insert(0, $"case {c.Name}:\n");
        return sb.ToString();
    }

    /// <summary>With BFNT_TRANSCRIPT=DIR, writes what both sides did to DIR/packets-CASE.out.</summary>
    public static void WriteTranscript(PacketCase c, SideResult a, SideResult b)
    {
        var dir = Environment.GetEnvironmentVariable("BFNT_TRANSCRIPT");
        if (string.IsNullOrEmpty(dir)) return;
        System.IO.Directory.CreateDirectory(dir);
        var sb = new StringBuilder();
        foreach (var r in new[] { a, b })
        {
            sb.AppendLine($"=== {r.Label}: load exit {r.Load.Exit}, stray {r.Stray}");
            for (int i = 0; i < r.Delivered.Count; i++) sb.AppendLine($"{Outcome(r.Delivered[i])}: {c.Packets[i]}");
            sb.Append(r.Listing);
        }
        File.WriteAllText(Path.Combine(dir, $"packets-{c.Name}.out"), sb.ToString());
    }

    static string Outcome(bool delivered) => delivered ? "delivered" : "not delivered";
}
