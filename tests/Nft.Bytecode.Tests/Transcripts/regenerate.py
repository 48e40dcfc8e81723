#!/usr/bin/env python3
"""Regenerates the nf_tables transcript corpus used by TranscriptRoundTripTests.

Each scenario runs nft commands (nftables 1.0.6) against the real kernel in a throwaway
network namespace under strace, which dumps every byte nft sends and receives on its sockets.
The nf_tables messages (subsystem NFNL_SUBSYS_NFTABLES) are written one per line:
    > <hex>   sent by nft
    < <hex>   received from the kernel
Run as root:  python3 regenerate.py   (writes *.txt next to this script)
"""
import os, random, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Each scenario: name, setup shell commands inside the namespace, nft invocations (argument lists).
SCENARIOS = [
    ("tables", [], [
        ["add table ip t4"], ["add table ip6 t6"], ["add table inet ti"], ["add table arp ta"],
        ["add table bridge tb"], ["add table netdev tn"],
        ["add table inet dorm { flags dormant; }"],
        ["add table inet tc { comment \"table comment\"; }"],
        ["add table inet own { flags owner; }"], ["-c add table inet checked"],
        ["-f", "{file}", "table inet own2 {\n  flags owner\n  chain c { type filter hook input priority 0; }\n}\nlist ruleset\n"],
        ["list tables"], ["-a list ruleset"], ["delete table ip t4"], ["-e add table ip echoed"],
        ["list ruleset"], ["flush ruleset"],
    ]),
    ("chains", ["ip link add {dev} type veth peer name {dev2}", "ip link set {dev} up", "ip link set {dev2} up"], [
        ["add table inet f"],
        ["add chain inet f in { type filter hook input priority 0; policy accept; }"],
        ["add chain inet f fw { type filter hook forward priority -150; policy drop; }"],
        ["add chain inet f out { type filter hook output priority filter + 10; }"],
        ["add chain inet f pre { type filter hook prerouting priority raw; }"],
        ["add chain inet f regular"],
        ["add chain inet f commented { comment \"chain comment\"; }"],
        ["add table ip nat"],
        ["add chain ip nat post { type nat hook postrouting priority srcnat; }"],
        ["add chain ip nat prer { type nat hook prerouting priority dstnat; }"],
        ["add table ip mangle"],
        ["add chain ip mangle route { type route hook output priority mangle; }"],
        ["add table netdev nd"],
        ["add chain netdev nd ing { type filter hook ingress device {dev} priority 0; policy accept; }"],
        ["add chain netdev nd ing2 { type filter hook ingress devices = { {dev}, {dev2} } priority 5; }"],
        ["add chain netdev nd egr { type filter hook egress device {dev} priority 0; }"],
        ["add table inet ii"],
        ["add chain inet ii ing { type filter hook ingress device {dev} priority 0; }"],
        ["add table bridge br"],
        ["add chain bridge br in { type filter hook input priority 0; }"],
        ["add table arp ar"],
        ["add chain arp ar in { type filter hook input priority 0; }"],
        ["-a list ruleset"], ["list chains"],
        ["rename chain inet f regular renamed"],
        ["delete chain inet f renamed"],
        ["-e add chain inet f echoed"],
        ["list ruleset"],
    ]),
    ("rules", ["ip link add {dev} type veth peer name {dev2}", "ip link set {dev} up", "ip link set {dev2} up"], [
        ["-f", "{file}", """table inet f {
  chain target { counter; }
  chain in {
    type filter hook input priority 0; policy accept;
    ip saddr 10.0.0.1 counter accept comment "single"
    ip saddr 10.0.0.0/8 drop
    ip saddr 10.1.2.0/23 drop
    ip daddr != 192.168.0.0/16 accept
    ip6 saddr fe80::/10 accept
    ip6 daddr ::1 accept
    tcp dport 22 accept
    tcp dport { 80, 443, 8080 } accept
    udp sport 1000-2000 drop
    tcp dport != 1-1023 drop
    tcp flags syn / syn,ack counter
    tcp flags & (syn|ack) == syn drop
    ip protocol icmp icmp type echo-request limit rate 10/second accept
    icmpv6 type { nd-neighbor-solicit, nd-router-advert } accept
    ct state established,related accept
    ct state invalid drop
    ct status dnat accept
    ct mark 0x1 accept
    ct direction original accept
    meta iifname "lo" accept
    iif "lo" accept
    meta oifname "eth*" accept
    meta mark set 0x10
    meta mark and 0xff == 0x2 accept
    meta l4proto tcp accept
    meta nfproto ipv4 accept
    meta pkttype broadcast drop
    meta skuid 0 accept
    meta length > 1000 drop
    meta priority set 0x10001
    ip dscp cs1 accept
    ip ttl < 10 drop
    ip length 100-200 accept
    ip version 4 accept
    ip hdrlength 5 accept
    ip6 hoplimit 1 drop
    ip6 nexthdr tcp accept
    ip6 flowlabel 12345 accept
    ether saddr 00:11:22:33:44:55 accept
    vlan id 10 accept
    th dport 53 accept
    ip saddr . tcp dport { 10.0.0.1 . 22, 10.0.0.2 . 80 } accept
    tcp dport vmap { 22 : accept, 23 : drop, 24 : jump target }
    ip daddr vmap { 10.0.0.0/8 : accept, 192.168.0.0/16 : drop }
    log prefix "in: " level warn flags all
    log group 2 snaplen 100 queue-threshold 5
    jump target
    goto target
    tcp dport 25 reject with tcp reset
    udp dport 26 reject with icmpx port-unreachable
    ip protocol udp reject with icmp host-unreachable
    reject
    quota 100 mbytes used 10 mbytes
    quota over 1000 mbytes drop
    limit rate over 100/minute burst 10 packets drop
    limit rate 1 mbytes/second burst 1000 bytes accept
    ct count over 10 drop
    numgen random mod 2 vmap { 0 : accept, 1 : drop }
    jhash ip saddr mod 4 seed 0xdeadbeef vmap { 0 : accept, 1 : accept, 2 : drop, 3 : drop }
    symhash mod 2 offset 100 vmap { 100 : accept, 101 : drop }
    fib saddr . iif oif missing drop
    fib daddr type local accept
    rt ip nexthop 10.0.0.1 accept
    tcp option maxseg size 1000-1500 accept
    tcp option sack-perm exists accept
    ip option rr exists drop
    exthdr frag exists drop
    exthdr hbh exists drop
    socket transparent 1 accept
    ipsec in reqid 1 accept
    meta secpath exists accept
    tcp dport 30 ct mark set ct mark and 0xffff0000 or 0x1
    meta mark set numgen inc mod 4 offset 1
    meta cpu 1 accept
    meta cgroup 1 accept
    meta time "2020-01-01 00:00" - "2030-01-01 00:00" accept
    meta hour "10:00"-"12:00" accept
    meta day "Monday" accept
    meta random > 100 accept
    ct helper "ftp" accept
    ct original ip saddr 10.0.0.1 accept
    ct expiration < 10s accept
    ct zone 1 accept
    ct bytes > 1000 accept
    ct label 1 accept
    notrack
    counter continue
    tcp dport 1 ct mark set 0x5
    tcp dport 2 ct mark set meta mark
    tcp dport 3 ip dscp set cs1
    tcp dport 4 tcp dport set 5
    tcp dport 6 ip ttl set 64
    tcp dport 7 meta nftrace set 1
    tcp dport 11 ct zone set 2
    tcp dport 12 ct event set new
    tcp dport 13 set update ip saddr timeout 10s @dyn
    tcp dport 14 add @dyn { ip saddr limit rate 10/second }
    tcp dport 15 meta mark set tcp dport map { 1 : 0x1, 2 : 0x2 }
    tcp dport 16 ct mark set ct mark or 0x3
    tcp dport 17 synproxy mss 1460 wscale 7 timestamp sack-perm
    tcp dport 18 ip saddr @dyn drop
    tcp dport 19 ip saddr != @dyn drop
    tcp dport 20 ct mark set meta mark << 2
    tcp dport 23 meta mark set meta mark >> 1
    tcp dport 21 osf name "Linux" accept
    tcp dport 22 ip saddr 10.0.0.1 ip daddr 10.0.0.2 tcp sport 1 tcp dport 2 counter drop
    return
  }
  set dyn { type ipv4_addr; flags dynamic,timeout; timeout 1m; }
}
"""],
        ["-a list ruleset"], ["-a list chain inet f in"],
        ["insert rule inet f in position {h1} ip saddr 1.1.1.1 drop"],
        ["add rule inet f in index 0 ip saddr 1.1.1.2 drop"],
        ["replace rule inet f in handle {h2} ip saddr 1.1.1.3 drop"],
        ["-e -a add rule inet f in ip saddr 1.1.1.4 counter drop comment \"echoed\""],
        ["delete rule inet f in handle {h3}"],
        ["list ruleset"], ["list counters"],
    ]),
    ("nat", ["ip link add {dev} type veth peer name {dev2}", "ip link set {dev} up", "ip link set {dev2} up"], [
        ["-f", "{file}", """table ip nat {
  chain pre { type nat hook prerouting priority dstnat;
    tcp dport 80 dnat to 10.0.0.2
    tcp dport 81 dnat to 10.0.0.2:8080
    tcp dport 82 dnat to 10.0.0.2-10.0.0.5:8000-8010
    tcp dport 83 redirect to :3128
    tcp dport 84 redirect
    tcp dport 85 dnat to ip saddr map { 10.0.0.1 : 10.0.0.9 }
  }
  chain post { type nat hook postrouting priority srcnat;
    oifname "eth0" masquerade
    oifname "eth1" masquerade random,persistent
    meta l4proto tcp masquerade to :1024-2048
    ip saddr 10.0.0.0/8 snat to 1.2.3.4
    ip saddr 10.1.0.0/16 snat to 1.2.3.4 fully-random
  }
}
table inet nat6 {
  chain pre { type nat hook prerouting priority dstnat;
    tcp dport 80 ip6 daddr ::1 dnat ip6 to [::2]:80
    ip daddr 10.0.0.1 dnat ip to 10.0.0.2
  }
}
table ip6 n6 {
  chain post { type nat hook postrouting priority srcnat;
    masquerade
  }
}
table ip d {
  chain out { type filter hook output priority 0;
    tcp dport 10 dup to 10.0.0.9
    tcp dport 11 dup to 10.0.0.9 device {dev}
  }
}
table ip tp {
  chain pre { type filter hook prerouting priority mangle;
    tcp dport 80 tproxy to 127.0.0.1:3128
    meta l4proto tcp tproxy to :50080
  }
}
table netdev nd {
  chain ing { type filter hook ingress device {dev} priority 0;
    ip saddr 10.0.0.1 fwd to {dev}
    ip saddr 10.0.0.2 dup to {dev}
    ether saddr 00:11:22:33:44:55 drop
  }
}
table bridge br {
  chain in { type filter hook input priority 0;
    ether type ip accept
    vlan id 5 accept
  }
}
table arp ar {
  chain in { type filter hook input priority 0;
    arp operation request accept
  }
}
"""],
        ["-a list ruleset"],
    ]),
    ("sets", [], [
        ["-f", "{file}", """table inet s {
  set v4 { type ipv4_addr; elements = { 10.0.0.1, 10.0.0.2 comment "elem comment" }; }
  set v6 { type ipv6_addr; flags interval; elements = { ::1, fe80::/10 }; }
  set iv { type ipv4_addr; flags interval; auto-merge; elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.20 }; }
  set ports { type inet_service; flags interval; elements = { 22, 80-90 }; }
  set cc { type ipv4_addr . inet_service; elements = { 10.0.0.1 . 22 }; }
  set ci { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/24 . 10-20 }; }
  set to { type ipv4_addr; flags timeout; timeout 1h; gc-interval 10s; elements = { 10.0.0.5 timeout 30s, 10.0.0.6 }; }
  set sized { type ipv4_addr; size 1024; policy memory; comment "set comment"; }
  set ctr { type ipv4_addr; counter; elements = { 10.0.0.7 } }
  set withexpr { type ipv4_addr; flags dynamic; size 100; limit rate 10/second; }
  set typed { typeof ip saddr . tcp dport; }
  set ifs { type ifname; elements = { "eth0", "lo" }; }
  set marks { type mark; elements = { 0x1, 0x2 }; }
  map m { type ipv4_addr : ipv4_addr; elements = { 10.0.0.1 : 10.0.0.2 }; }
  map vm { type inet_service : verdict; elements = { 22 : accept, 23 : drop, 24 : jump c }; }
  map pm { type ipv4_addr : inet_service; flags interval; elements = { 10.0.0.0/8 : 80 }; }
  map cm { type ipv4_addr . inet_service : verdict; elements = { 10.0.0.1 . 22 : accept }; }
  map catch { type ipv4_addr : verdict; elements = { 10.0.0.1 : accept, * : drop }; }
  counter cnt { packets 10 bytes 1000; }
  counter cnt2 { comment "counter comment"; }
  quota q { over 100 mbytes used 1 mbytes; }
  limit lim { rate 100/second burst 5 packets; }
  limit limb { rate over 1 mbytes/second; }
  ct helper h { type "ftp" protocol tcp; l3proto ip; }
  ct timeout tmo { protocol tcp; l3proto ip; policy = { established: 100 }; }
  ct expectation exp { protocol tcp; dport 22; timeout 10s; size 5; l3proto ip; }
  synproxy sp { mss 1460; wscale 7; timestamp sack-perm; }
  map om { type ipv4_addr : counter; elements = { 10.0.0.1 : cnt }; }
  chain c {
    ip saddr @v4 counter name cnt
    counter name ip saddr map @om
    quota name q
    ip saddr @iv limit name lim
    ip saddr . tcp dport @cc accept
    tcp dport vmap @vm
    ip daddr set ip saddr map @m
    ct helper set "h"
    ct timeout set "tmo"
    ct expectation set "exp"
    update @withexpr { ip saddr }
    ip saddr @catch
  }
}
"""],
        ["add element inet s v4 { 10.0.0.3, 10.0.0.4 }"],
        ["add element inet s to { 10.0.0.8 timeout 1m expires 30s }"],
        ["delete element inet s v4 { 10.0.0.3 }"],
        ["-e add element inet s iv { 172.16.0.0/12 }"],
        ["-a list ruleset"], ["list set inet s iv"], ["list map inet s vm"], ["get element inet s v4 { 10.0.0.1 }"],
        ["list counters"], ["reset counters"], ["list quotas"], ["reset quotas"],
        ["delete set inet s sized"], ["flush set inet s v4"],
        ["list ruleset"],
    ]),
 # This kernel has no flowtable or secmark support: the kernel refuses these, but what nft sends is captured.
    ("refused", ["ip link add {dev} type veth peer name {dev2}"], [
        ["-f", "{file}", """table inet r {
  flowtable ft { hook ingress priority 0; devices = { {dev}, {dev2} }; counter; }
  chain c { meta l4proto tcp flow add @ft; }
  chain q { tcp dport 8 queue num 1 bypass; tcp dport 9 queue num 2-3 fanout; }
}
"""],
        ["add table inet r2"],
        ["add secmark inet r2 sm { \"system_u:object_r:ssh_server_packet_t:s0\" }"],
        ["add flowtable inet r2 ft2 { hook ingress priority 10; devices = { {dev} }; }"],
        ["list flowtables"],
    ]),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, **kw)


HDR = re.compile(r'^\d+\s+(sendmsg|sendto|recvmsg|recvfrom|write|read)\((\d+),')
HEX = re.compile(r'^ \| ([0-9a-f]{5})  (.{49})')


def parse_strace(path):
    """Yields (direction, bytes) per syscall buffer. Direction '>' for sends, '<' for receives."""
    out, cur = [], None
    with open(path) as f:
        for line in f:
            m = HDR.match(line)
            if m:
                if cur and cur[1]:
                    out.append((cur[0], bytes(cur[1])))
                cur = ('>' if m.group(1).startswith(('send', 'write')) else '<', bytearray())
                continue
            h = HEX.match(line)
            if h and cur is not None:
                cur[1].extend(bytes.fromhex(''.join(t for t in h.group(2).split() if len(t) == 2)))
    if cur and cur[1]:
        out.append((cur[0], bytes(cur[1])))
    return out


def split_messages(buf):
    i = 0
    while i + 16 <= len(buf):
        ln = int.from_bytes(buf[i:i + 4], 'little')
        if ln < 16 or i + ln > len(buf):
            break
        yield buf[i:i + ln]
        i += (ln + 3) & ~3


def main():
    suffix = f"{random.randrange(1 << 30):08x}"
    total = 0
    for name, setup, cmds in SCENARIOS:
        ns = f"h1c{suffix}{name[:3]}"
        dev, dev2 = f"d{suffix[:6]}a", f"d{suffix[:6]}b"
        lines = [f"# scenario {name}: regenerate with regenerate.py (nft 1.0.6 against the kernel, captured by strace)"]
        run(["ip", "netns", "add", ns])
        try:
            for s in setup:
                run(["ip", "netns", "exec", ns, "sh", "-c", s.format(dev=dev, dev2=dev2)])
            for args in cmds:
                args = list(args)
                tmpfile = None
                if args[0] == "-f":
                    tmpfile = tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False)
                    tmpfile.write(args[2].replace("{dev}", dev).replace("{dev2}", dev2))
                    tmpfile.close()
                    argv = ["-f", tmpfile.name]
                    shown = "-f <ruleset>"
                else:
                    text = " ".join(args).replace("{dev}", dev).replace("{dev2}", dev2)
                    if "{h" in text:
                        # handles of the first rules of inet f in, looked up untraced
                        listing = run(["ip", "netns", "exec", ns, "nft", "-a", "list", "chain", "inet", "f", "in"]).stdout
                        handles = re.findall(r"# handle (\d+)", listing)
                        for i, h in enumerate(handles[:8]):
                            text = text.replace("{h%d}" % i, h)
                    flags = []
                    while text.startswith("-"):
                        flag, text = text.split(" ", 1)
                        flags.append(flag)
                    argv = flags + [text]
                    shown = " ".join(argv)
                trace = tempfile.NamedTemporaryFile(delete=False).name
                r = run(["ip", "netns", "exec", ns, "strace", "-f", "-xx", "-s", "1048576",
                         "-e", "trace=sendmsg,sendto,recvmsg,recvfrom", "-e", "write=all", "-e", "read=all",
                         "-o", trace, "nft"] + argv)
                if tmpfile:
                    os.unlink(tmpfile.name)
                status = "ok" if r.returncode == 0 else f"exit {r.returncode}: {r.stderr.strip().splitlines()[:1]}"
                lines.append(f"# nft {shown} ({status})")
                if r.returncode != 0:
                    print(f"{name}: nft {shown}: {r.stderr.strip()}", file=sys.stderr)
                for direction, buf in parse_strace(trace):
                    for msg in split_messages(buf):
                        mtype = int.from_bytes(msg[4:6], 'little')
                        if mtype >> 8 != 10:  # NFNL_SUBSYS_NFTABLES only
                            continue
                        lines.append(f"{direction} {msg.hex()}")
                        total += 1
                os.unlink(trace)
        finally:
            run(["ip", "netns", "del", ns])
        with open(os.path.join(HERE, f"{name}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    print(f"{total} nf_tables messages written")


if __name__ == "__main__":
    main()
