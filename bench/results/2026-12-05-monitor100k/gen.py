import sys
n=int(sys.argv[1]); fam=sys.argv[2]
def addr(i): return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
if fam=="netdev": hook='type filter hook ingress device "fw0" priority 0'
else: hook="type filter hook input priority 0"
out=[f"table {fam} bench {{", f"  chain c {{\n    {hook}; policy accept;"]
out+=[f"    ip saddr {addr(i)} udp dport {1024 + i % 60000} counter drop" for i in range(n-1)]
out.append("    ip saddr 198.18.0.1 udp dport 9 counter drop")
out.append("  }\n}\n")
open(f"/tmp/m100k/{fam}-{n}.nft","w").write("\n".join(out))
