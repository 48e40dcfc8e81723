import sys,re
def t(line):
    h,m,s=line.split()[1].split(':'); return (int(h)*3600+int(m)*60+float(s))*1000
for f in sys.argv[1:]:
    L=open(f).read().splitlines()
    nft=[l for l in L if 'execve("/usr/sbin/nft"' in l][0]
    start=t(L[0]); tn=t(nft); end=t(L[-1])
    bf=[l for l in L if 'execve("/work' in l]
    reads=[(t(l),float(re.search(r'<([\d.]+)>',l).group(1))*1000) for l in L if re.search(r'\bread\(3, ".{0,20}", 8\)',l) or ('recvmsg(3' in l and 'EAGAIN' not in l)]
    sends=[t(l) for l in L if re.search(r'sendto\(3,|sendmsg\(3,',l)]
    first=sends[0] if sends else 0
    print(f"{f}: ipnetns {(t(bf[0]) if bf else tn)-start:.1f} script {tn-t(bf[0]) if bf else 0:.1f} nftstart->firstreq {first-tn:.1f} firstreq->lastsend {sends[-1]-first:.1f} lastsend->exit {end-sends[-1]:.1f} total-nft {end-tn:.1f} waits {' '.join('%.2f'%r[1] for r in reads if r[1]>0.03)}")
