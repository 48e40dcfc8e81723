using System.Text.RegularExpressions;

namespace Bpfilter.Daemon.Tests.Enforcement;

/// <summary>
/// ct matches run in BPF (BPF_NETFILTER programs read skb->_nfct and the nf_conn entry): the chain
/// is placed in BPF, conntrack is switched on for it (and off when no BPF chain reads ct any more), and
/// on the same real traffic (TCP connections both ways, an ICMP error, untracked UDP, a zone and a
/// mark set by kernel-placed chains) every counter equals the kernel's own nf_tables running the same
/// ruleset in a reference namespace pair. The keys of the entry and its tuples (zone per direction, l3proto,
/// protocol, ip and ip6 addresses, ports, expiration) are counted the same way.
/// </summary>
public sealed partial class ConntrackTests
{
    // ip z and ip m write conntrack (ct zone set, notrack, ct mark set): refused by the lifter, they run in the
    // kernel in both rigs. ip t reads ct only: it runs in BPF under bpfilterd.
    const string Ruleset = """
        table ip z {
            chain pre {
                type filter hook prerouting priority -300; policy accept;
                udp dport 5555 notrack accept
                ct zone set 7
            }
            chain out {
                type filter hook output priority -300; policy accept;
                ct zone set 7
            }
        }
        table ip m {
            chain pre {
                type filter hook prerouting priority 0; policy accept;
                ct state new tcp dport 2222 ct mark set 0x2a
            }
        }
        table ip t {
            chain in {
                type filter hook input priority 0; policy drop;
                ct direction original counter
                ct direction reply counter
                ct status seen-reply counter
                ct status assured,dnat counter
                ct status != 0x0 counter
                ct mark 0x2a counter
                ct mark != 0x2a counter
                ct mark > 0x10 counter
                ct zone 7 counter
                ct zone != 7 counter
                ct original zone 7 counter
                ct reply zone 7 counter
                ct l3proto ipv4 counter
                ct protocol udp counter
                ct protocol icmp counter
                ct original ip saddr 198.18.7.2 counter
                ct original ip daddr 198.18.7.0/24 counter
                ct reply ip saddr != 198.18.7.1 counter
                meta l4proto tcp ct original proto-dst 2222 counter
                meta l4proto tcp ct reply proto-src 2223 counter
                meta l4proto icmp ct original proto-dst 9999 counter
                ct expiration > 1s counter
                ct expiration < 1s counter
                ct state invalid counter
                ct state untracked counter
                ct state != established counter
                ct state { new, related } counter
                ct state vmap { established : jump est, related : accept, new : jump fresh, untracked : accept }
                counter drop
            }
            chain est {
                ct direction reply counter accept
                tcp dport 2222 counter accept
                counter
            }
            chain fresh {
                ct state new tcp dport 2222 counter accept
                counter drop
            }
        }
        """;

    const string FwAddr = EnforcementRig.FwAddr, PeerAddr = EnforcementRig.PeerAddr;

    // Packets into the firewall, each sequence fixed (no FIN exchange, no delayed ACK racing a close):
    // two connections peer -> fw:2222 (SYN, ACK, data, RST after a pause: original direction, marked, zone 7),
    // one fw -> peer:2223 (SYN-ACK, the ACK of fw's data: reply direction), a UDP datagram fw -> peer:9999
    // (closed: the ICMP port unreachable comes back related), untracked UDP to fw:5555, and a SYN to a
    // port nothing lets in (new, dropped).
    static string Traffic(string fw, string peer) => Traffic(fw, peer, $"/tmp/bft-ct-ready-{Guid.NewGuid():N}");

    /// <param name="ready">a path prefix: each server creates PREFIX.fw / PREFIX.peer once it listens</param>
    static string Traffic(string fw, string peer, string ready) => $$"""
        set -e
        ip netns exec {{fw}} python3 -c '
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("{{FwAddr}}", 2222)); s.listen(4)
        open("{{ready}}.fw", "w").close()
        s.settimeout(20)
        for _ in range(2):
            c, _ = s.accept(); c.recv(100)
            try: c.recv(100)
            except ConnectionResetError: pass
        ' & fwsrv=$!
        ip netns exec {{peer}} python3 -c '
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("{{PeerAddr}}", 2223)); s.listen(4)
        open("{{ready}}.peer", "w").close()
        s.settimeout(20)
        c, _ = s.accept(); c.recv(100)
        try: c.recv(100)
        except ConnectionResetError: pass
        ' & peersrv=$!
        # the clients connect once both servers listen (python's start-up takes seconds on a loaded machine)
        for i in $(seq 300); do [ -e {{ready}}.fw ] && [ -e {{ready}}.peer ] && break; sleep 0.1; done
        rm -f {{ready}}.fw {{ready}}.peer
        cat > /tmp/bft-ct-client-$$.py <<'PY'
        import socket, struct, sys, time
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        c.sendall(b"hello"); time.sleep(0.5)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); c.close()
        PY
        ip netns exec {{peer}} python3 /tmp/bft-ct-client-$$.py {{FwAddr}} 2222
        ip netns exec {{peer}} python3 /tmp/bft-ct-client-$$.py {{FwAddr}} 2222
        ip netns exec {{fw}} python3 /tmp/bft-ct-client-$$.py {{PeerAddr}} 2223
        rm -f /tmp/bft-ct-client-$$.py
        ip netns exec {{fw}} python3 -c '
        import socket, time
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", ("{{PeerAddr}}", 9999)); time.sleep(0.5)
        '
        ip netns exec {{peer}} python3 -c '
        import socket
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"x", ("{{FwAddr}}", 5555))
        '
        ip netns exec {{peer}} python3 -c '
        import socket
        try: socket.create_connection(("{{FwAddr}}", 2299), timeout=0.5)
        except OSError: pass
        '
        wait $fwsrv $peersrv
        sleep 0.5
        """;

    [GeneratedRegex(@"^\s*(.*?)\s*counter packets (\d+) bytes (\d+)(.*)$", RegexOptions.Multiline)]
    private static partial Regex CounterLine();

    /// <summary>"rule text -> packets bytes" for every counter of table ip t, in listing order.</summary>
    static List<string> Counters(string listing)
    {
        var at = listing.IndexOf("table ip t {", StringComparison.Ordinal);
        Assert.True(at >= 0, listing);
        var t = listing[at..];
        var end = t.IndexOf("\n}", StringComparison.Ordinal);
        return CounterLine().Matches(t[..end]).Select(m => $"{m.Groups[1].Value} [{m.Groups[4].Value.Trim()}] -> {m.Groups[2].Value} {m.Groups[3].Value}").ToList();
    }

    static ProcessResult Run(string script) => ProcessRunner.Run("bash", ["-c", script], timeout: TimeSpan.FromSeconds(90));

    [Fact]
    public void CtMatchesRunInBpfAndCountLikeTheKernel()
    {
        // the reference: the kernel's own nf_tables, plain nft
        using var refFw = new NetNs();
        using var refPeer = new NetNs();
        refFw.AddVeth("bfr0", refPeer, "bfr1");
        refFw.Ip("addr", "add", FwAddr + "/24", "dev", "bfr0");
        refPeer.Ip("addr", "add", PeerAddr + "/24", "dev", "bfr1");
        foreach (var (ns, dev) in new[] { (refFw, "bfr0"), (refPeer, "bfr1"), (refFw, "lo"), (refPeer, "lo") }) ns.Ip("link", "set", dev, "up");
        refFw.WaitUntilUp("bfr0");
        refPeer.WaitUntilUp("bfr1");
        var load = refFw.Exec("nft", ["-f", "-"], Ruleset);
        Assert.True(load.Exit == 0, load.ToString());

        using var rig = new EnforcementRig();
        rig.Nft(Ruleset);
        var explain = rig.Explain();
        Assert.Contains("table ip t chain in: BPF", explain);
        Assert.Matches(@"table ip z chain pre: kernel nf_tables", explain);
        Assert.Contains($"table inet {Nft.Kernel.ConntrackSwitch.TableName}", rig.KernelRuleset());
        Assert.Contains("conntrack switched on", rig.Daemon.Log);

        var r1 = Run(Traffic(refFw.Name, refPeer.Name));
        Assert.True(r1.Exit == 0, "reference traffic: " + r1);
        var r2 = Run(Traffic(rig.Daemon.Ns.Name, rig.Peer.Name));
        Assert.True(r2.Exit == 0, "bpfilterd traffic: " + r2 + "\n" + rig.Daemon.Log);

        var kernel = Counters(refFw.Exec("nft", ["list", "ruleset"]).Stdout);
        var bpf = Counters(rig.ListRuleset());
        Assert.Equal(string.Join("\n", kernel), string.Join("\n", bpf));
        // the traffic exercised what it should (else equal counters prove little)
        foreach (var rule in new[] { "ct direction reply", "ct status seen-reply", "ct mark 0x0000002a", "ct zone 7", "ct state untracked", "ct state != established",
            "ct original zone 7", "ct reply zone 7", "ct l3proto ipv4", "ct protocol udp", "ct original ip saddr 198.18.7.2",
            "ct reply ip saddr != 198.18.7.1", "meta l4proto tcp ct reply proto-src 2223", "meta l4proto icmp ct original proto-dst 9999", "ct expiration > 1s" })
            Assert.True(kernel.Any(c => c.StartsWith(rule, StringComparison.Ordinal) && !c.EndsWith("-> 0 0", StringComparison.Ordinal)),
                $"'{rule}' counted nothing:\n{string.Join("\n", kernel)}");

        // no BPF chain reads ct any more: conntrack goes off
        rig.Nft("delete table ip t");
        Assert.DoesNotContain(Nft.Kernel.ConntrackSwitch.TableName, rig.KernelRuleset());
        Assert.Contains("conntrack switched off", rig.Daemon.Log);
    }

    [Fact]
    public void WithoutAnyoneElseTrackingTheBpfChainStillSeesConntrack()
    {
        // nothing but the BPF chain: the switch alone makes conntrack run, so established replies are told apart
        using var rig = new EnforcementRig();
        rig.Nft("""
            table ip t {
                chain in {
                    type filter hook input priority 0; policy accept;
                    ct state new tcp dport 81 counter drop
                    ct state established counter accept
                }
            }
            """);
        Assert.Contains("table ip t chain in: BPF", rig.Explain());
        Assert.False(rig.Delivered(81));
        Assert.True(rig.Delivered(82));
        Assert.Matches(@"ct state new tcp dport 81 counter packets [1-9]", rig.ListRuleset());
    }

    [Fact]
    public void BpfOnlySwitchesConntrackOnWithASocketOfItsOwn()
    {
        using var rig = new EnforcementRig("--placement", "bpf-only");
        rig.Nft("""
            table ip t {
                chain in {
                    type filter hook input priority 0; policy accept;
                    ct state invalid counter drop
                    ct state new tcp dport 81 counter drop
                }
            }
            """);
        // with conntrack off every packet would be invalid and dropped: port 82 answers only if it is on
        Assert.True(rig.Delivered(82));
        Assert.False(rig.Delivered(81));
        Assert.Contains($"table inet {Nft.Kernel.ConntrackSwitch.TableName}", rig.KernelRuleset());
        rig.Nft("flush ruleset");
        Assert.Equal("", rig.KernelRuleset().Trim());
    }

    [Fact]
    public void TheConntrackSwitchTableNameIsReserved()
    {
        using var rig = new EnforcementRig();
        var r = rig.Nft($"add table inet {Nft.Kernel.ConntrackSwitch.TableName}", expectSuccess: false);
        Assert.NotEqual(0, r.Exit);
        Assert.Contains("is reserved", rig.Daemon.Log);
        Assert.Equal("", rig.ListRuleset().Trim());
    }
}
