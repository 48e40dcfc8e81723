import sys, subprocess, re, collections
f, target = sys.argv[1], sys.argv[2]
out = subprocess.run(["perf", "script", "-i", f, "-F", "ip,sym"], capture_output=True, text=True).stdout
samples = [s for s in out.split("\n\n") if s.strip()]
c = collections.Counter(); tot = 0
def short(l):
    l = re.sub(r"^\s*[0-9a-f]+\s+", "", l)
    l = re.sub(r"\[[^\]]*\]", "", l); l = re.sub(r"\b(valuetype|class|instance)\b", "", l)
    m = re.search(r"([\w.`+<>|]+::[\w.`<>|]+)\(", l)
    return m.group(1) if m else l[:80]
for s in samples:
    fr = s.strip().split("\n")
    for i, l in enumerate(fr):
        if target in l:
            tot += 1
            # frames are leaf first: the callee is fr[i-1]; walk down to the first named managed frame
            j = i - 1
            name = "(self)"
            while j >= 0:
                n = short(fr[j])
                if "::" in n or not n.startswith("0x"):
                    name = n; break
                j -= 1
            c[name] += 1
            break
print(f"{target}: {tot} of {len(samples)} samples ({100*tot/len(samples):.1f}%)")
for k, v in c.most_common(25): print(f"  {100*v/len(samples):5.1f}%  {k}")
