using System.Buffers.Binary;
using System.Net;

namespace Bpfilter.Backend.Tests;

/// <summary>Builds test frames byte by byte: Ethernet (+ VLAN), IPv4/IPv6 (+ options, extension headers, fragments), TCP/UDP/ICMP.</summary>
public sealed class Packets
{
    private readonly List<byte> _l2 = new();
    private readonly List<byte> _l3 = new();
    private readonly List<byte> _l4 = new();
    private int _l4Proto;
    private Func<List<byte>, List<byte>, byte[]>? _l3Builder;

    public static readonly byte[] DstMac = [0x02, 0, 0, 0, 0, 0x02];
    public static readonly byte[] SrcMac = [0x02, 0, 0, 0, 0, 0x01];

    public static Packets Ether(ushort? vlanId = null, ushort? etherType = null, ushort tpid = 0x8100)
    {
        var p = new Packets();
        p._l2.AddRange(DstMac);
        p._l2.AddRange(SrcMac);
        if (vlanId is { } id)
        {
            p._l2.AddRange([(byte)(tpid >> 8), (byte)tpid, (byte)(id >> 8), (byte)id]);
        }
        p._etherType = etherType;
        return p;
    }

    private ushort? _etherType;

    public Packets Ipv4(string src, string dst, int ttl = 64, byte[]? options = null, ushort fragment = 0)
    {
        _etherType ??= 0x0800;
        _l3Builder = (l4, _) =>
        {
            var opt = options ?? [];
            var ihl = 20 + opt.Length;
            var h = new byte[ihl];
            h[0] = (byte)(0x40 | ihl / 4);
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), (ushort)(ihl + l4.Count));
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(6), fragment);
            h[8] = (byte)ttl;
            h[9] = (byte)_l4Proto;
            IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 12);
            IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 16);
            opt.CopyTo(h, 20);
            return h;
        };
        return this;
    }

    /// <summary>IPv6 with extension headers given as (type, total length in bytes); a fragment header is (44, fragment offset in 8-byte units).</summary>
    public Packets Ipv6(string src, string dst, params (byte Type, int Value)[] ext)
    {
        _etherType ??= 0x86dd;
        _l3Builder = (l4, _) =>
        {
            var exts = new List<byte>();
            var types = ext.Select(e => e.Type).Append((byte)_l4Proto).ToArray();
            for (var i = 0; i < ext.Length; i++)
            {
                var (type, value) = ext[i];
                if (type == 44)
                {
                    exts.AddRange([types[i + 1], 0, (byte)(value >> 5), (byte)(value << 3), 0, 0, 0, 1]);
                }
                else
                {
                    var len = value; // total bytes, multiple of 8
                    var hdr = new byte[len];
                    hdr[0] = types[i + 1];
                    hdr[1] = (byte)(len / 8 - 1);
                    exts.AddRange(hdr);
                }
            }
            var h = new byte[40];
            h[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)(exts.Count + l4.Count));
            h[6] = ext.Length > 0 ? ext[0].Type : (byte)_l4Proto;
            h[7] = 64;
            IPAddress.Parse(src).GetAddressBytes().CopyTo(h, 8);
            IPAddress.Parse(dst).GetAddressBytes().CopyTo(h, 24);
            return h.Concat(exts).ToArray();
        };
        return this;
    }

    public Packets Tcp(ushort sport, ushort dport, byte flags = 0x02)
    {
        _l4Proto = 6;
        var h = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(h, sport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), dport);
        h[12] = 5 << 4;
        h[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(14), 64240);
        _l4.AddRange(h);
        return this;
    }

    public Packets Udp(ushort sport, ushort dport, int payload = 8)
    {
        _l4Proto = 17;
        var h = new byte[8 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(h, sport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(2), dport);
        BinaryPrimitives.WriteUInt16BigEndian(h.AsSpan(4), (ushort)h.Length);
        _l4.AddRange(h);
        return this;
    }

    public Packets Icmp(byte type, byte code = 0, byte proto = 1)
    {
        _l4Proto = proto;
        _l4.AddRange([type, code, 0, 0, 0, 1, 0, 1]);
        return this;
    }

    public Packets Payload(int bytes)
    {
        _l4.AddRange(new byte[bytes]);
        return this;
    }

    public byte[] Build()
    {
        var l3 = _l3Builder?.Invoke(_l4, _l3) ?? [];
        var frame = new List<byte>(_l2);
        var type = _etherType ?? 0x0806;
        frame.AddRange([(byte)(type >> 8), (byte)type]);
        frame.AddRange(l3);
        frame.AddRange(_l4);
        while (frame.Count < 60) frame.Add(0); // Ethernet minimum frame (without FCS)
        return frame.ToArray();
    }

    public static implicit operator byte[](Packets p) => p.Build();
}
