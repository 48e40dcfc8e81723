#!/usr/bin/env python3
"""Sends nf_tables requests to the kernel of the current netns and prints the replies as an
attribute tree, to learn the kernel's dump layout. Usage: nlprobe.py gettable|getchain|getrule|getset|getsetelem TABLE SET|getobj|getgen"""
import socket, struct, sys, os

NFT = 10
MSG = {'gettable':1,'getchain':4,'getrule':7,'getset':10,'getsetelem':13,'getgen':16,'getobj':19,'getflowtable':23}

def attrs(b, depth):
    i = 0
    while i + 4 <= len(b):
        ln, ty = struct.unpack_from('<HH', b, i)
        if ln < 4: break
        p = b[i+4:i+ln]
        nested = ty & 0x8000
        print('  '*depth + f'@{i} type {ty & 0x3fff}{" N" if nested else ""}{" BE" if ty & 0x4000 else ""} len {ln}: {p.hex()}')
        if nested: attrs(p, depth+1)
        i += (ln + 3) & ~3

def main():
    cmd = sys.argv[1]
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    s.bind((0,0))
    body = b''
    def strattr(t, v):
        v = v.encode()+b'\0'
        a = struct.pack('<HH', 4+len(v), t) + v
        return a + b'\0'*((-len(a)) % 4)
    flags = 0x301 if cmd != 'getgen' else 0x1
    if cmd == 'getsetelem':
        body = strattr(1, sys.argv[2]) + strattr(2, sys.argv[3])
    fam = int(os.environ.get('FAM', '0'))
    msg = struct.pack('<IHHII', 16+4+len(body), NFT<<8 | MSG[cmd], flags, 1, 0) + struct.pack('BBH', fam, 0, 0) + body
    s.send(msg)
    done = False
    while not done:
        d = s.recv(65536)
        print(f'== datagram {len(d)} bytes')
        i = 0
        while i < len(d):
            ln, ty, fl, seq, pid = struct.unpack_from('<IHHII', d, i)
            print(f'msg len {ln} type {ty:#x} flags {fl:#x} seq {seq} pid {pid}')
            if ty == 3 or ty == 2:
                print('  ' + d[i+16:i+ln].hex()); done = True
            else:
                print(f'  nfgen {d[i+16:i+20].hex()}')
                attrs(d[i+20:i+ln], 1)
                if not (fl & 2): done = True
            i += (ln + 3) & ~3
main()
