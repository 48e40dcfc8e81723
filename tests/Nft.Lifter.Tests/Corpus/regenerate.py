#!/usr/bin/env python3
"""Regenerates the lifter test corpus from the real kernel.

For every <name>.nft next to this script: creates a throwaway network namespace (with a veth pair
named lift0/lift1 for netdev chains), loads the ruleset with the distribution's nft, then dumps the
namespace's nf_tables state straight from the kernel over NETLINK_NETFILTER (tables, chains, sets,
elements of every set, objects, flowtables, rules) and writes every reply message as one hex line to
<name>.hex. The readable `nft --debug=netlink list ruleset` listing is written to <name>.netlink.txt
for humans. Run as root:  python3 regenerate.py [name ...]
"""
import os, random, socket, struct, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
GETTABLE, GETCHAIN, GETRULE, GETSET, GETSETELEM, GETOBJ, GETFLOWTABLE = 1, 4, 7, 10, 13, 19, 23
NFTA_SET_TABLE, NFTA_SET_NAME = 1, 2
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET = 1, 2


def attrs(buf):
    out, pos = {}, 0
    while pos + 4 <= len(buf):
        ln, ty = struct.unpack_from("<HH", buf, pos)
        if ln < 4:
            break
        out[ty & 0x3FFF] = buf[pos + 4:pos + ln]
        pos += (ln + 3) & ~3
    return out


def nla_str(ty, s):
    b = s.encode() + b"\0"
    return struct.pack("<HH", 4 + len(b), ty) + b + b"\0" * ((4 - len(b) % 4) % 4)


def dump(sock, msg, family=0, payload=b""):
    seq = random.randint(1, 1 << 30)
    hdr = struct.pack("<IHHII", 16 + 4 + len(payload), (NFNL_SUBSYS_NFTABLES << 8) | msg,
                      NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(hdr + struct.pack("<BBH", family, 0, 0) + payload)
    msgs = []
    while True:
        data = sock.recv(1 << 20)
        pos = 0
        while pos < len(data):
            ln, ty, fl, sq, pid = struct.unpack_from("<IHHII", data, pos)
            m = data[pos:pos + ln]
            pos += (ln + 3) & ~3
            if ty == NLMSG_DONE:
                return msgs
            if ty == NLMSG_ERROR:
                err = struct.unpack_from("<i", m, 16)[0]
                if err == 0:
                    continue
                raise OSError(-err, f"dump {msg} failed")
            msgs.append(m)


def dump_all():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    out = []
    out += dump(s, GETTABLE)
    out += dump(s, GETCHAIN)
    sets = dump(s, GETSET)
    out += sets
    for m in sets:
        fam = m[16]
        a = attrs(m[20:])
        t, n = a[NFTA_SET_TABLE][:-1].decode(), a[NFTA_SET_NAME][:-1].decode()
        out += dump(s, GETSETELEM, fam, nla_str(NFTA_SET_ELEM_LIST_TABLE, t) + nla_str(NFTA_SET_ELEM_LIST_SET, n))
    out += dump(s, GETOBJ)
    out += dump(s, GETFLOWTABLE)
    out += dump(s, GETRULE)
    for m in out:
        print(m.hex())


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r


def generate(name):
    ns = f"lift{random.randint(0, 1 << 24):x}"
    src = os.path.join(HERE, name + ".nft")
    run(["ip", "netns", "add", ns])
    try:
        nsx = ["ip", "netns", "exec", ns]
        run(nsx + ["ip", "link", "add", "lift0", "type", "veth", "peer", "name", "lift1"])
        run(nsx + ["ip", "link", "set", "lift0", "up"])
        run(nsx + ["ip", "link", "set", "lift1", "up"])
        run(nsx + ["nft", "-f", src])
        listing = run(nsx + ["nft", "--debug=netlink", "list", "ruleset"]).stdout
        hexdump = run(nsx + [sys.executable, os.path.abspath(__file__), "--dump"]).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns])
    with open(os.path.join(HERE, name + ".hex"), "w") as f:
        f.write(f"# kernel dump of {name}.nft (regenerate.py); one netlink message per line\n")
        f.write(hexdump)
    with open(os.path.join(HERE, name + ".netlink.txt"), "w") as f:
        f.write(listing)


if __name__ == "__main__":
    if sys.argv[1:] == ["--dump"]:
        dump_all()
        sys.exit(0)
    names = sys.argv[1:] or sorted(f[:-4] for f in os.listdir(HERE) if f.endswith(".nft"))
    for n in names:
        generate(n)
        print("generated", n)
