using Nft.Bytecode.Objects;

namespace Nft.Kernel.Tests;

internal static class Rulesets
{
    /// <summary>What BPF cannot run faithfully, in every family: nat, masquerade, reject, ct state, named and anonymous sets, vmaps, arp, bridge.</summary>
    public const string Realistic = """
        table ip nat {
            chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                iifname "veth0" tcp dport 8080 counter dnat to 198.18.0.9:80
            }
            chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                oifname "veth0" ip saddr 10.0.0.0/8 masquerade
            }
        }
        table inet filter {
            counter icmp_seen { }
            quota big { over 100 mbytes }
            set blocked {
                type ipv4_addr
                flags interval
                elements = { 10.9.0.0/16, 198.19.5.5 }
            }
            map portverdict {
                type inet_service : verdict
                elements = { 53 : accept, 123 : drop }
            }
            chain input {
                type filter hook input priority filter; policy accept;
                ct state established,related counter accept
                ct state invalid drop
                ip saddr @blocked counter reject
                tcp dport { 22, 80, 443 } counter accept
                ip protocol icmp counter name icmp_seen accept
                tcp dport 23 reject with tcp reset
                udp dport vmap @portverdict
                meta l4proto udp udp dport vmap { 5353 : jump mdns, 67 : drop }
                jump tail
            }
            chain mdns {
                counter comment "mdns"
            }
            chain tail {
                ip6 nexthdr ipv6-icmp accept
                counter
            }
        }
        table arp arpfilter {
            chain input {
                type filter hook input priority filter; policy accept;
                arp operation request counter
            }
        }
        table bridge br {
            chain forward {
                type filter hook forward priority filter; policy accept;
                ether type ip counter
                meta pkttype broadcast drop
            }
        }
        """;

    /// <summary>A small ruleset for transitions: a counted ICMP rule the tests send pings through.</summary>
    public const string Small = """
        table inet t {
            set allowed {
                type ipv4_addr
                elements = { 198.18.0.2, 198.18.0.3 }
            }
            chain input {
                type filter hook input priority filter; policy accept;
                ip protocol icmp counter
                ip saddr @allowed counter
                tcp dport { 22, 80 } counter accept
                jump side
            }
            chain side {
                counter
            }
        }
        """;

    /// <summary>Reads what the kernel holds in a namespace (the "emulation" side of these tests).</summary>
    public static IReadOnlyList<SourceTable> Read(TestNetns ns)
    {
        using var s = ns.Socket();
        return KernelRuleset.Read(s);
    }

    /// <summary>
    /// Shifts every rule handle, as an emulation with its own handle allocation would have them:
    /// the placement must never confuse the caller's handles with the kernel's.
    /// </summary>
    public static IReadOnlyList<SourceTable> ShiftHandles(IReadOnlyList<SourceTable> tables, ulong by) =>
        tables.Select(t => t with
        {
            Chains = t.Chains.Select(c => c with { Rules = c.Rules.Select(r => r with { Handle = r.Handle + by }).ToList() }).ToList(),
        }).ToList();

    public static Rule Rule(IReadOnlyList<SourceTable> tables, string table, string chain, int index) =>
        tables.Single(t => t.Table.Name == table).Chains.Single(c => c.Chain.Name == chain).Rules[index];
}
