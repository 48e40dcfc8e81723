"""ClassBench-style 5-tuple ACL rules for bench/suite.py.

The distributions are read from ClassBench's published ACL seed `acl1_seed` (Taylor and Turner,
"ClassBench: a packet classification benchmark", 2005; the parameter file as distributed with
ClassBench / ClassBench-ng): the protocol mix (-prots), the port-pair classes per protocol, the
destination port ranges (-dpar) and exact ports (-dpem), and the joint source/destination prefix
lengths per port-pair class (-wc_wc, -wc_ar, -wc_em). What this generator leaves out of ClassBench's
db_generator: the address trees (-snest/-sskew/-dnest/-dskew: prefixes are drawn uniformly at random
under the drawn length, so rules share fewer prefixes than real ACLs), the prefix correlation (-pcorr)
and the TCP flags (-flags: no flag matches). acl1 has no source-port classes other than wildcard.
Actions are accept or drop with equal probability (the seed has none). A rule that would match the
probe packet is drawn again, so the probe runs through every rule.
"""
import random

# -prots: protocol, probability, then the port-pair classes used with it and their probabilities.
PROTOCOLS = [(0, 0.08458390, {"wc_wc": 1.0}), (1, 0.03137790, {"wc_wc": 1.0}),
             (6, 0.87312412, {"wc_wc": 0.21562500, "wc_ar": 0.13124999, "wc_em": 0.65312499}),
             (17, 0.01091405, {"wc_ar": 0.12500000, "wc_em": 0.87500000})]

# -wc_wc, -wc_ar, -wc_em: total prefix length (source + destination), probability, then the source
# length distribution given that total.
PREFIX_LENGTHS = {
    "wc_wc": [(0, .00448431, {0: 1.0}), (8, .00896861, {0: .5, 8: .5}), (13, .00448431, {0: 1.0}),
              (23, .00448431, {23: 1.0}), (24, .00448431, {23: 1.0}), (25, .00448431, {23: 1.0}),
              (26, .00448431, {23: 1.0}), (27, .00448431, {23: 1.0}), (28, .00448431, {23: 1.0}),
              (29, .00448431, {23: 1.0}), (30, .00448431, {23: 1.0}), (31, .00448431, {23: 1.0}),
              (38, .00448431, {23: 1.0}), (39, .05381166, {23: 1.0}), (47, .00448431, {23: 1.0}),
              (48, .00448431, {23: 1.0}), (49, .00448431, {23: 1.0}), (52, .01793722, {30: 1.0}),
              (53, .00896861, {31: 1.0}), (54, .08968610, {23: .1, 32: .9}), (55, .10313901, {23: .95652175, 31: .04347826}),
              (56, .11210762, {32: 1.0}), (62, .01793722, {30: 1.0}), (63, .03139013, {31: .85714287, 32: .14285715}),
              (64, .48878923, {32: 1.0})],
    "wc_ar": [(55, .01176471, {23: 1.0}), (63, .03529412, {31: 1.0}), (64, .95294118, {32: 1.0})],
    "wc_em": [(51, .00470588, {23: 1.0}), (52, .01411765, {30: 1.0}), (53, .00705882, {31: 1.0}),
              (54, .04470588, {23: .05263158, 32: .94736844}), (55, .02823529, {23: 1.0}), (62, .01176471, {32: 1.0}),
              (63, .04235294, {31: .6111111, 32: .3888889}), (64, .84705883, {32: 1.0})],
}

# -dpar (destination port ranges) and -dpem (exact destination ports): value, probability.
DPORT_RANGES = [((1600, 1649), .08235294), ((1300, 1349), .07058824), ((1300, 1350), .07058824), ((7500, 7599), .04705882),
                ((2200, 2210), .04705882), ((1025, 65535), .03529412), ((1700, 1750), .03529412), ((5001, 65535), .03529412),
                ((32200, 32207), .03529412), ((8000, 8100), .03529412), ((61700, 61709), .02352941), ((61500, 61509), .02352941),
                ((61600, 61609), .02352941), ((61900, 61909), .02352941), ((62000, 62009), .02352941), ((61800, 61809), .02352941),
                ((61100, 61119), .02352941), ((61200, 61209), .02352941), ((61000, 61009), .02352941), ((61400, 61409), .02352941),
                ((61300, 61309), .02352941), ((62700, 62709), .02352941), ((1700, 1720), .02352941), ((62600, 62609), .02352941),
                ((20000, 20010), .02352941), ((1600, 1650), .02352941), ((62400, 62409), .02352941), ((62100, 62109), .02352941),
                ((62500, 62509), .02352941), ((62200, 62219), .01176471), ((32210, 32219), .01176471), ((62220, 62239), .01176471),
                ((62200, 62239), .01176471), ((1300, 1399), .01176471)]
DPORT_EXACT = [(1521, .1882353), (1526, .05411765), (1221, .04235294), (1433, .03529412), (1525, .02823529), (135, .02823529),
               (14753, .02823529), (1712, .02352941), (1711, .02352941), (1704, .02352941), (1708, .02352941), (5555, .02117647),
               (1705, .02117647), (6000, .02117647), (20, .02117647), (21, .02117647), (1724, .02117647), (1717, .02117647),
               (1707, .01882353), (1733, .01882353), (1706, .01882353), (5540, .01882353), (5541, .01882353), (1734, .01647059),
               (1489, .01411765), (1490, .01411765), (5632, .01411765), (5631, .01411765), (6789, .01176471), (1715, .00941176),
               (2121, .00941176), (6790, .00705882), (32200, .00705882), (32201, .00705882), (2110, .0047), (2115, .0047),
               (3031, .0047), (1540, .0047), (31000, .0047), (3745, .0047), (30210, .0047), (19856, .0047), (2026, .0047),
               (443, .0047), (80, .0047), (30211, .0047), (6849, .0047), (27000, .0047), (27400, .0047), (65500, .0047),
               (30804, .0047), (30899, .0047), (1650, .0024), (1600, .0024), (15126, .0024), (15121, .0024), (2051, .0024),
               (2308, .0024), (12050, .0024), (1601, .0024), (1602, .0024), (5543, .0024), (7205, .0024), (5542, .0024),
               (1432, .0024), (1352, .0024), (6888, .0024), (512, .0024), (4646, .0024), (55444, .0024), (6889, .0024),
               (1550, .0024), (6890, .0024)]

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}


def pick(rng, items):
    """items: (value, weight) pairs."""
    return rng.choices([v for v, _ in items], weights=[w for _, w in items])[0]


def prefix(rng, length):
    a = rng.getrandbits(32) & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
    return ".".join(str(a >> s & 255) for s in (24, 16, 8, 0)), length


def covers(p, ip):
    (net, length), a = p, sum(int(x) << s for x, s in zip(ip.split("."), (24, 16, 8, 0)))
    n = sum(int(x) << s for x, s in zip(net.split("."), (24, 16, 8, 0)))
    mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF if length else 0
    return a & mask == n & mask


class Rule:
    def __init__(self, proto, src, dst, dports, accept):
        self.proto, self.src, self.dst, self.dports, self.accept = proto, src, dst, dports, accept

    def matches(self, src, dst, proto, dport):
        return (self.proto in (0, proto) and covers(self.src, src) and covers(self.dst, dst)
                and (self.dports is None or self.dports[0] <= dport <= self.dports[1]))

    def nft(self):
        parts = []
        for key, (net, length) in (("saddr", self.src), ("daddr", self.dst)):
            if length: parts.append(f"ip {key} {net}/{length}" if length < 32 else f"ip {key} {net}")
        if self.dports is not None:
            lo, hi = self.dports
            parts.append(f"{PROTO_NAMES[self.proto]} dport {lo}" + (f"-{hi}" if hi != lo else ""))
        elif self.proto:
            parts.append(f"ip protocol {PROTO_NAMES[self.proto]}")
        parts.append("accept" if self.accept else "drop")
        return " ".join(parts)

    def iptables(self):
        parts = [f"-s {net}/{length}" for net, length in (self.src,) if length] + [f"-d {net}/{length}" for net, length in (self.dst,) if length]
        if self.proto: parts.append(f"-p {PROTO_NAMES[self.proto]}")
        if self.dports is not None: parts.append(f"--dport {self.dports[0]}" + (f":{self.dports[1]}" if self.dports[1] != self.dports[0] else ""))
        parts.append("-j ACCEPT" if self.accept else "-j DROP")
        return " ".join(parts)


def generate(n, seed, avoid):
    """n rules; none matches avoid = (source, destination, protocol, destination port)."""
    rng = random.Random(seed)
    rules = []
    while len(rules) < n:
        proto, _, classes = rng.choices(PROTOCOLS, weights=[w for _, w, _ in PROTOCOLS])[0]
        cls = pick(rng, list(classes.items()))
        total, _, src_lengths = rng.choices(PREFIX_LENGTHS[cls], weights=[w for _, w, _ in PREFIX_LENGTHS[cls]])[0]
        src_len = pick(rng, list(src_lengths.items()))
        dst_len = min(32, max(0, total - src_len))
        dports = pick(rng, DPORT_RANGES) if cls == "wc_ar" else (lambda p: (p, p))(pick(rng, DPORT_EXACT)) if cls == "wc_em" else None
        r = Rule(proto, prefix(rng, src_len), prefix(rng, dst_len), dports, rng.random() < 0.5)
        if not r.matches(*avoid): rules.append(r)
    return rules
